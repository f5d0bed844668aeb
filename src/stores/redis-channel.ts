import type { RedisConnection, Subscription } from './redis-client.js';
import { describeRedisError, type RedisLink } from './redis-link.js';

/** After a subscription failed to start, how long before the next local miss tries again. */
const RESUBSCRIBE_AFTER_MS = 1_000;

/**
 * The store's pub/sub channel (`<prefix>events`), on a connection of its own made with the client's
 * `duplicate()`: wake-ups of processes waiting for another's acquisition (`d:<token name>`) and
 * fleet-wide sign-outs (`f:<user hash>`). Without it, waits poll, and other processes' sign-outs
 * reach this one's tokens only when they expire or are refused. On a Redis Cluster whose servers
 * have it (Redis 7), the channel is a sharded one (`SPUBLISH`/`SSUBSCRIBE`: a message goes to the
 * channel's shard only, not over the whole cluster bus); classic pub/sub otherwise. Every process of
 * a fleet talks to the same servers, so all pick the same.
 */
export class RedisChannel {
  private subscriber: Subscription | undefined;
  private resubscribeAt = 0;
  /** Whether the channel is sharded, once known (asked of the servers once). */
  private sharded: Promise<boolean> | undefined;
  /** The subscription under way (settles, never rejects), until it succeeded or failed. */
  private starting: Promise<void> | undefined;
  /** The wait for the subscription under way (each subscription is waited for once). */
  private waited: { readonly starting: Promise<void>; readonly wait: Promise<void> } | undefined;
  private trouble = false;
  private closed = false;
  /** Token name → waiters for another process's acquisition. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** True once subscribed: waits can rely on wake-ups and poll seldom. */
  subscribed = false;

  constructor(
    private readonly connection: RedisConnection,
    private readonly link: RedisLink,
    readonly name: string,
    /** Another process signed out the user with this hash. */
    private readonly onSignOut: (userHash: string) => void,
    private readonly report: (message: string) => void,
  ) {}

  /** The message that wakes the waiters for `tokenName`. */
  static wakeMessage(tokenName: string): string {
    return `d:${tokenName}`;
  }

  /** The message that signs the user with `userHash` out in every process. */
  static signOutMessage(userHash: string): string {
    return `f:${userHash}`;
  }

  /**
   * Subscribes once, on its own connection (polling covers its absence); resolves once subscribed,
   * or once that failed, or after `ms`. A process that reads a token from Redis only after it is
   * subscribed cannot miss a sign-out: one before the read deleted the token, one after reaches it.
   */
  listen(ms: number): Promise<void> {
    if (this.subscribed || this.closed) return Promise.resolve();
    const starting = this.starting ?? this.start();
    if (!starting) return Promise.resolve();
    // One wait per subscription, shared by the misses meanwhile: one that hangs (its shard's master
    // down) must not slow every later miss.
    if (this.waited?.starting === starting) return this.waited.wait;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wait = Promise.race([starting, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
    this.waited = { starting, wait };
    return wait;
  }

  private start(): Promise<void> | undefined {
    if (this.subscriber || Date.now() < this.resubscribeAt) return undefined;
    let subscriber: Subscription | undefined;
    try {
      subscriber = this.subscriber = this.connection.subscription();
    } catch (error) {
      this.failed(error);
      return undefined;
    }
    if (!subscriber) return undefined;
    const started = subscriber;
    started.onError((error) => this.failed(error));
    const starting = this.isSharded()
      .then((sharded) => started.subscribe(this.name, sharded, (message) => this.onMessage(message)))
      .then(() => {
        if (this.subscriber !== started) return;
        this.subscribed = true;
        this.trouble = false;
      })
      .catch((error: unknown) => {
        this.failed(error);
        // Never subscribed: the next local miss (after a pause) starts afresh.
        if (this.subscriber !== started || this.subscribed) return;
        this.subscriber = undefined;
        this.resubscribeAt = Date.now() + RESUBSCRIBE_AFTER_MS;
        started.end();
      })
      .finally(() => {
        if (this.starting === starting) this.starting = undefined;
      });
    this.starting = starting;
    return starting;
  }

  /** Publishes `message` on the channel (sharded or not, see {@link isSharded}). */
  async publish(message: string): Promise<void> {
    if (this.link.closed) return;
    const sharded = await this.isSharded();
    await this.link.command([sharded ? 'SPUBLISH' : 'PUBLISH', this.name, message]);
  }

  /** Sharded on a cluster whose servers know SPUBLISH (Redis 7); asked once, again after a failure. */
  private isSharded(): Promise<boolean> {
    if (!this.connection.cluster) return Promise.resolve(false);
    if (!this.sharded) {
      const asked = this.link.command(['COMMAND', 'INFO', 'SPUBLISH']).then((reply) => Array.isArray(reply) && Array.isArray(reply[0]));
      this.sharded = asked;
      asked.catch(() => {
        if (this.sharded === asked) this.sharded = undefined;
      });
    }
    return this.sharded;
  }

  /** Waits at most `ms` for the wake-up of `tokenName`'s waiters. */
  waitFor(tokenName: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(tokenName);
      if (!set) this.waiters.set(tokenName, (set = new Set()));
      const waiters = set;
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(tokenName) === waiters) this.waiters.delete(tokenName);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(ms, 1));
      waiters.add(wake);
    });
  }

  /** Ends the subscription and wakes every waiter. */
  close(): void {
    this.closed = true;
    for (const wake of [...this.waiters.values()].flatMap((set) => [...set])) wake();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribed = false;
    subscriber?.end();
  }

  private onMessage(message: string): void {
    if (message.startsWith('d:')) {
      for (const wake of [...(this.waiters.get(message.slice(2)) ?? [])]) wake();
    } else if (message.startsWith('f:')) {
      this.onSignOut(message.slice(2));
    }
  }

  private failed(error: unknown): void {
    if (this.trouble || this.closed) return;
    this.trouble = true;
    this.report(`The Redis subscription failed (${describeRedisError(error)}); waits poll, and sign-outs in other processes reach this one's tokens only when they expire or are refused.`);
  }
}
