import type { RedisConnection } from './redis-client.js';

/**
 * The store's commands to Redis and what it knows of Redis's health: each command bounded by the
 * store's own timeout (a late answer is ignored, never unhandled); after a failure, Redis is left
 * alone for `retryAfterMs`, then tried once again. Each change of health is reported once.
 */
export class RedisLink {
  /** Since when Redis has been failing (epoch ms), or undefined while it answers. */
  private downSince: number | undefined;
  private retryAt = 0;
  /** Set by the store's `close()`: nothing more is sent. */
  closed = false;

  constructor(
    private readonly client: RedisConnection,
    private readonly timeoutMs: number,
    private readonly retryAfterMs: number,
    private readonly report: (message: string, durationMs?: number) => void,
  ) {}

  /** One Redis call, bounded by the store's own timeout; a late answer is ignored (never unhandled). */
  async command(args: string[]): Promise<unknown> {
    if (!this.client.ready()) throw new Error('the client is not connected (connecting, reconnecting or closed)');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const sent = Promise.resolve().then(() => this.client.send(args));
    sent.catch(() => {});
    const timeout = new Promise<never>((_, reject) => {
      // Rejected after the next poll phase, not in the timers phase: when the event loop itself was
      // blocked past the timeout, an answer already in the socket is read first and wins the race.
      timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${this.timeoutMs} ms`))), this.timeoutMs);
    });
    try {
      const reply = await Promise.race([sent, timeout]);
      this.recovered();
      return reply;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a command in the background: its failure only marks Redis as failing. */
  background(args: string[]): void {
    if (this.closed) return;
    this.command(args).catch((error: unknown) => this.failed(error));
  }

  /** True when Redis may be asked: it answers, or it failed long enough ago to be tried (once) again. */
  available(): boolean {
    if (this.closed) return false;
    if (this.downSince === undefined) return true;
    const now = Date.now();
    if (now < this.retryAt) return false;
    this.retryAt = now + this.retryAfterMs;
    return true;
  }

  /** A command failed: Redis is left alone for `retryAfterMs` (reported once, when it starts failing). */
  failed(error: unknown): void {
    const now = Date.now();
    this.retryAt = now + this.retryAfterMs;
    if (this.downSince !== undefined) return;
    this.downSince = now;
    this.report(`Redis failed (${describeRedisError(error)}); tokens are acquired and kept in this process until it answers again (tried again every ${this.retryAfterMs} ms).`);
  }

  private recovered(): void {
    if (this.downSince === undefined) return;
    const since = this.downSince;
    this.downSince = undefined;
    this.report(`Redis answers again; tokens are shared with the fleet again.`, Date.now() - since);
  }
}

/** An error from Redis or its client, for a diagnostic: its name and message, at most 200 characters. */
export function describeRedisError(error: unknown): string {
  const text = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return text.slice(0, 200);
}
