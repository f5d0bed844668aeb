import { describeRedisError } from './redis-link.js';
import type { RedisClientLike, RedisSubscriberLike } from './redis-types.js';

/**
 * The store's pub/sub channel (`<prefix>events`), on a connection of its own made with the client's
 * `duplicate()`: wake-ups of processes waiting for another's acquisition (`d:<token name>`) and
 * fleet-wide sign-outs (`f:<user hash>`). Without it, waits poll, and other processes' sign-outs
 * reach this one's tokens only when they expire or are refused.
 */
export class RedisChannel {
  private subscriber: RedisSubscriberLike | undefined;
  private trouble = false;
  private closed = false;
  /** Token name → waiters for another process's acquisition. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** True once subscribed: waits can rely on wake-ups and poll seldom. */
  subscribed = false;

  constructor(
    private readonly client: RedisClientLike,
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

  /** Subscribes once, on its own connection; polling covers its absence. */
  listen(): void {
    if (this.subscriber || this.closed || typeof this.client.duplicate !== 'function') return;
    let subscriber: RedisSubscriberLike;
    try {
      subscriber = this.subscriber = this.client.duplicate();
    } catch (error) {
      this.failed(error);
      return;
    }
    subscriber.on('error', (error) => this.failed(error));
    // It must not keep the process alive on its own.
    subscriber.unref?.();
    subscriber
      .connect()
      .then(() => subscriber.subscribe(this.name, (message) => this.onMessage(message)))
      .then(() => {
        if (this.subscriber !== subscriber) return;
        this.subscribed = true;
        this.trouble = false;
      })
      .catch((error: unknown) => this.failed(error));
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
    subscriber?.destroy();
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
