import type { EncryptionKey } from './encryption.js';
import type { TokenStore } from './token-store.js';

/**
 * What {@link redisTokenStore} needs of a node-redis client (`createClient()` of the `redis`
 * package, v6), made and connected (or still connecting) by the application, so TLS, auth or
 * Sentinel are its choice. Only `sendCommand` is used for commands; `duplicate` makes the one
 * connection the store subscribes on (wake-ups and fleet-wide sign-out). For Redis Cluster see
 * {@link RedisClusterLike}; for ioredis, {@link IORedisLike}.
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
  /** Subscribes to the store's sharded channel (`SSUBSCRIBE`, Redis 7): used on a Redis Cluster whose servers have it. */
  sSubscribe?(channel: string, listener: (message: string, channel: string) => unknown): Promise<unknown>;
  /** When present, called so the subscriber does not keep the process alive. */
  unref?(): void;
  /** Ends the subscriber connection ({@link RedisTokenStore.close}). */
  destroy(): void;
}

/**
 * What {@link redisTokenStore} needs of a node-redis cluster client (`createCluster()` of the
 * `redis` package, v6), made and connected (or connecting) by the application. Commands go through
 * `sendCommand(firstKey, isReadonly, args)`, routed by their first key; every key one command
 * touches shares one slot (the user's hash tag). Its `duplicate()` subscribes with sharded pub/sub
 * (`SSUBSCRIBE`) where the servers have it (Redis 7), classic pub/sub otherwise.
 *
 * @example
 * ```ts
 * import { createCluster } from 'redis';
 * const cluster: RedisClusterLike = createCluster({ rootNodes: [{ url: 'redis://10.0.0.1:6379' }] });
 * await cluster.connect();
 * ```
 */
export interface RedisClusterLike {
  /** Whether the cluster client is connected; while it is not, the store goes on without Redis. */
  readonly isReady: boolean;
  /** Sends one raw command to the master of `firstKey`'s slot. */
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: Array<string>): Promise<unknown>;
  /** Tells a cluster client from a single client (node-redis's cluster has it). */
  getSlotRandomNode(slot: number): unknown;
  /** Makes the cluster client the store subscribes on. */
  duplicate?(): RedisSubscriberLike;
}

/**
 * What {@link redisTokenStore} needs of an ioredis client: a `Redis` or a `Cluster` (ioredis 5 or
 * 6, an optional peer dependency), made by the application. Commands go through `call`; ioredis
 * routes them on a cluster by their keys. `duplicate` makes the subscriber (on a `Cluster` with
 * `shardedSubscribers: true`, for sharded pub/sub where the servers have it).
 *
 * @example
 * ```ts
 * import { Cluster, Redis } from 'ioredis';
 * const single: IORedisLike = new Redis(process.env.REDIS_URL!);
 * const cluster: IORedisLike = new Cluster([{ host: '10.0.0.1', port: 6379 }]);
 * ```
 */
export interface IORedisLike {
  /** `'ready'` while commands can be sent; otherwise the store goes on without Redis. */
  readonly status: string;
  /** True for an ioredis `Cluster`. */
  readonly isCluster?: boolean;
  /** Sends one raw command. */
  call(command: string, ...args: string[]): Promise<unknown>;
  /** Its options, as the store reads them. */
  readonly options?: {
    /** A Cluster's: how often its sharded subscriber reads the slots (the store's: 5 s if unset). */
    readonly slotsRefreshInterval?: number;
    /** Put before every key by ioredis (a sharded channel's name too). */
    readonly keyPrefix?: string;
  };
  /** Makes the store's subscriber connection (`duplicate([], { shardedSubscribers: true, slotsRefreshInterval })` on a Cluster). */
  duplicate?(...args: never[]): IORedisSubscriberLike;
}

/**
 * The subscriber the store makes with {@link IORedisLike.duplicate}.
 *
 * @example
 * ```ts
 * const subscriber: IORedisSubscriberLike = redis.duplicate();
 * ```
 */
export interface IORedisSubscriberLike {
  /** `'wait'` until a subscriber made with `lazyConnect` is connected. */
  readonly status: string;
  /** `'error'`, `'message'` and `'smessage'` (channel, message) listeners. */
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** Connects a subscriber made with `lazyConnect`. */
  connect(): Promise<unknown>;
  /** Subscribes to the store's channel (a single server, or a cluster without sharded pub/sub). */
  subscribe(channel: string): Promise<unknown>;
  /** Subscribes to the store's sharded channel (`SSUBSCRIBE`, a Redis 7 cluster). */
  ssubscribe(channel: string): Promise<unknown>;
  /** Ends the subscriber connection. */
  disconnect(): void;
  /** The client's options, as the store reads them. */
  readonly options?: {
    /** Put before a sharded channel's name (a key to ioredis), so its messages come from that name. */
    readonly keyPrefix?: string;
  };
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
  /**
   * The application's Redis client, made (and connected, or connecting) by the application: a
   * node-redis client or cluster (`createClient()`, `createCluster()`), or an ioredis `Redis` or
   * `Cluster`. Which one is told by its shape.
   */
  client: RedisClientLike | RedisClusterLike | IORedisLike;
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
