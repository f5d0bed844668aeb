import type { EncryptionKey } from './encryption.js';
import type { TokenStore } from './token-store.js';

/**
 * What {@link redisTokenStore} needs of a Redis client: a client of the `redis` package (node-redis
 * v6), made and connected (or still connecting) by the application, so TLS, auth, Sentinel or
 * Cluster are its choice. Only `sendCommand` is used for commands; `duplicate` makes the one
 * connection the store subscribes on (wake-ups and fleet-wide sign-out).
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * const client: RedisClientLike = createClient({ url: process.env.REDIS_URL });
 * client.connect().catch(() => {}); // need not be awaited
 * ```
 */
export interface RedisClientLike {
  /** Whether the client is connected; while it is not, the store goes on without Redis (this process's tokens only). */
  readonly isReady: boolean;
  /** Sends one raw command (`['EVALSHA', …]`, `['PUBLISH', …]`); the only way the store talks to Redis. */
  sendCommand(args: Array<string>): Promise<unknown>;
  /** Makes the connection the store subscribes on; without it, waits poll and other processes' sign-outs reach this one's tokens only when they expire or are refused. */
  duplicate?(): RedisSubscriberLike;
}

/**
 * The subscriber connection the store makes with {@link RedisClientLike.duplicate}.
 *
 * @example
 * ```ts
 * const subscriber: RedisSubscriberLike = client.duplicate();
 * ```
 */
export interface RedisSubscriberLike {
  /** Where the store hears of the subscriber's errors (reported as one `diagnostic` event). */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Connects the subscriber. */
  connect(): Promise<unknown>;
  /** Subscribes to the store's channel (`<prefix>events`). */
  subscribe(channel: string, listener: (message: string, channel: string) => unknown): Promise<unknown>;
  /** When present, called so the subscriber does not keep the process alive. */
  unref?(): void;
  /** Ends the subscriber connection ({@link RedisTokenStore.close}). */
  destroy(): void;
}

/**
 * Options of {@link redisTokenStore}. Every optional option may be `undefined` (e.g. read from
 * `process.env`), which means its default.
 *
 * @example
 * ```ts
 * const options: RedisTokenStoreOptions = { client, prefix: 'xaa:', encryptionKeys: [process.env.XAA_TOKEN_KEY!] };
 * ```
 */
export interface RedisTokenStoreOptions {
  /** The application's node-redis client, made (and connected, or connecting) by the application. */
  client: RedisClientLike;
  /** Namespace of every key and of the channel. Default `'xaa:'`. */
  prefix?: string | undefined;
  /**
   * AES-256-GCM keys, each 32 bytes (a `Uint8Array`, or base64): the first encrypts, all decrypt.
   * To rotate, put the new key first and keep the old ones until their tokens have expired (set
   * `namingKey` first, or the rotation renames every key).
   */
  encryptionKeys: readonly EncryptionKey[];
  /**
   * The secret Redis names are derived from (HMAC-SHA256): 32 bytes, a `Uint8Array` or base64, the
   * same in every process of the fleet, and never rotated with the encryption keys. Default: derived
   * from the first encryption key, so rotating that key renames every key (a cold start: each token
   * is acquired once more; nothing leaks).
   */
  namingKey?: EncryptionKey | undefined;
  /** Tokens kept in this process (the warm path's LRU). Default 1000. */
  max?: number | undefined;
  /** How long any one Redis call may take before the store goes on without it. Default 200 ms. */
  commandTimeoutMs?: number | undefined;
  /**
   * How long the fleet lock lasts if its holder dies. A live holder extends it every third of this
   * while it acquires, however long the acquisition takes. Default 15 s.
   */
  lockTtlMs?: number | undefined;
  /**
   * How long a process waits for another's acquisition before acquiring itself, when no lock
   * stands. While the other's lock stands (its holder is alive and acquiring), it waits on, up to
   * the longest its own acquisition could take (timeouts and retries; 5 minutes at most). Default 5 s.
   */
  lockWaitMs?: number | undefined;
  /** After a Redis failure, how long the store goes without Redis before trying it again. Default 1 s. */
  retryAfterMs?: number | undefined;
}

/**
 * A {@link TokenStore} from {@link redisTokenStore}, plus `close()` (ends its subscriber
 * connection; the application's client stays the application's).
 *
 * @example
 * ```ts
 * process.on('SIGTERM', () => store.close());
 * ```
 */
export interface RedisTokenStore extends TokenStore {
  /** Tokens kept in this process. */
  readonly size: number;
  /** Ends the store's subscriber connection and wakes any waiter; the application's client stays open. */
  close(): Promise<void>;
}
