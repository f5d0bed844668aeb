import { randomBytes } from 'node:crypto';
import { ConfigurationError, CrossAppAccessError } from '../errors.js';
import { KeyRing, generationPrefix, type EncryptionKey } from './encryption.js';
import { MemoryTokenStore, checkedMax } from './memory.js';
import { Namer } from './naming.js';
import { DELETE_IF_GENERATION, FORGET, GET_OR_LOCK, RELEASE, SAVE } from './redis-scripts.js';
import type { SharedAcquisition, StoredToken, TokenStore, TokenStoreHost } from './token-store.js';

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
  /** How long the fleet lock lasts if its holder dies. Default 15 s. */
  lockTtlMs?: number | undefined;
  /** How long a process waits for another's acquisition before acquiring itself. Default 5 s. */
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

const MAX_REMEMBERED = 10_000;

/** What the store knows of a token it saved or loaded: where it lives in Redis, and its generation. */
interface Known {
  readonly names: Names;
  readonly generation: string;
}

/** The Redis names of one cache key: hashes only, never a token, a user key or a URL. */
interface Names {
  readonly token: string;
  readonly lock: string;
  readonly index: string;
  /** The user's sign-out mark: while it stands, nothing is saved for the user. */
  readonly signedOut: string;
  readonly id: string;
  readonly user: string;
}

class RedisStore implements RedisTokenStore {
  private readonly local: MemoryTokenStore;
  private readonly ring: KeyRing;
  private readonly namer: Namer;
  private readonly client: RedisClientLike;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly timeoutMs: number;
  private readonly lockTtlMs: number;
  private readonly lockWaitMs: number;
  private readonly retryAfterMs: number;
  private host: TokenStoreHost = { now: Date.now, emit: () => {} };
  private readonly known = new WeakMap<StoredToken, Known>();
  /** Cache key → the generation a 401 refused: never taken from Redis again. */
  private readonly rejected = new Map<string, string>();
  /**
   * User hash → user key, for sign-outs announced by other processes: exactly the users this
   * process holds tokens for (kept in step with the LRU) or is obtaining one for, however many.
   */
  private readonly usersByHash = new Map<string, string>();
  /** User hash → how many of `obtain` are under way for that user. */
  private readonly obtaining = new Map<string, number>();
  /** Token name → waiters for another process's acquisition. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Since when Redis has been failing (epoch ms), or undefined while it answers. */
  private downSince: number | undefined;
  private retryAt = 0;
  private subscriber: RedisSubscriberLike | undefined;
  private subscribed = false;
  private subscriberTrouble = false;
  private closed = false;

  constructor(options: RedisTokenStoreOptions) {
    if (typeof options?.client?.sendCommand !== 'function') {
      throw new ConfigurationError('client', 'expected a client of the redis package (createClient())');
    }
    this.ring = new KeyRing(options.encryptionKeys);
    this.namer = new Namer(options.namingKey, this.ring);
    this.local = new MemoryTokenStore(checkedMax(options.max, 'max'), {
      added: (user) => this.usersByHash.set(this.namer.user(user), user),
      removed: (user) => this.unlist(user),
    });
    this.client = options.client;
    this.prefix = options.prefix ?? 'xaa:';
    if (typeof this.prefix !== 'string') throw new ConfigurationError('prefix', 'expected a string');
    this.channel = `${this.prefix}events`;
    this.timeoutMs = positive(options.commandTimeoutMs, 200, 'commandTimeoutMs');
    this.lockTtlMs = positive(options.lockTtlMs, 15_000, 'lockTtlMs');
    this.lockWaitMs = positive(options.lockWaitMs, 5_000, 'lockWaitMs');
    this.retryAfterMs = positive(options.retryAfterMs, 1_000, 'retryAfterMs');
  }

  get size(): number {
    return this.local.size;
  }

  attach(host: TokenStoreHost): void {
    this.host = host;
  }

  // The warm path: this process's LRU, no I/O.
  get(key: string): StoredToken | undefined {
    return this.local.get(key);
  }

  set(key: string, token: StoredToken, user: string): void {
    this.local.set(key, token, user);
  }

  /** A 401: drops the token here, and in Redis if it is still that generation there (in the background). */
  delete(key: string, token: StoredToken): boolean {
    const dropped = this.local.delete(key, token);
    const known = this.known.get(token);
    if (known && this.rejected.get(key) !== known.generation) {
      remember(this.rejected, key, known.generation);
      if (this.available()) {
        this.command(['EVAL', DELETE_IF_GENERATION, '1', known.names.token, generationPrefix(known.generation)]).catch((error: unknown) => this.failed(error));
      }
    }
    return dropped;
  }

  /** Sign-out across the fleet: Redis's copies and the index, and every process's own (by a message). */
  async deleteUser(user: string): Promise<void> {
    this.local.deleteUser(user);
    const names = this.namesOf('', user);
    if (this.closed) return;
    try {
      await this.command(['EVAL', FORGET, '2', names.index, names.signedOut, `${this.prefix}{${names.user}}:t:`, this.channel, `f:${names.user}`, String(this.lockTtlMs)]);
    } catch (error) {
      this.failed(error);
      throw new CrossAppAccessError(`The user's tokens were dropped in this process, but not in Redis (${describe(error)}): other processes may use them until they expire. Call forget() again.`, {
        code: 'network_error',
        stage: 'request',
        cause: error,
      });
    }
  }

  /** A local miss: the fleet's token, or one acquisition across the fleet (see {@link TokenStore.obtain}). */
  async obtain(key: string, user: string, shared: SharedAcquisition): Promise<StoredToken> {
    const names = this.namesOf(key, user);
    // Listed while under way: a sign-out meanwhile must reach the acquisition (it keeps nothing).
    this.usersByHash.set(names.user, user);
    this.obtaining.set(names.user, (this.obtaining.get(names.user) ?? 0) + 1);
    try {
      return await this.sharedOrAcquired(key, names, shared);
    } finally {
      const left = (this.obtaining.get(names.user) ?? 1) - 1;
      if (left > 0) this.obtaining.set(names.user, left);
      else {
        this.obtaining.delete(names.user);
        this.unlist(user);
      }
    }
  }

  private async sharedOrAcquired(key: string, names: Names, shared: SharedAcquisition): Promise<StoredToken> {
    if (!this.available()) return shared.acquire();
    this.listen();
    const owner = randomBytes(12).toString('base64url');
    const deadline = Date.now() + this.lockWaitMs;
    let force = false;
    // A value that did not open is reported once, not on every look.
    let unopened: string | undefined;
    while (true) {
      let reply: unknown;
      try {
        reply = await this.command(['EVAL', GET_OR_LOCK, '2', names.token, names.lock, owner, String(this.lockTtlMs), force ? '1' : '0']);
      } catch (error) {
        this.failed(error);
        return shared.acquire();
      }
      if (!Array.isArray(reply) || (reply[0] !== null && typeof reply[0] !== 'string') || (reply[1] !== 0 && reply[1] !== 1)) {
        this.failed(new Error('an answer that is not the reply of this store\'s script'));
        return shared.acquire();
      }
      const value = reply[0] as string | null;
      const token = value === null || value === unopened ? undefined : this.open(key, names, value);
      if (value !== null && !token) unopened = value;
      const locked = reply[1] === 1;
      if (token && shared.usable(token)) {
        if (locked) this.release(names, owner);
        return token;
      }
      if (locked) {
        try {
          return await shared.acquire();
        } finally {
          this.release(names, owner);
        }
      }
      if (Date.now() >= deadline) {
        this.diagnostic(`Another process's acquisition of a token did not finish within ${this.lockWaitMs} ms (lockWaitMs); this process acquires its own.`);
        return shared.acquire();
      }
      // Someone else acquires: wait for its message (or poll, should a message be lost).
      force = true;
      await this.waitFor(names.token, Math.min(this.subscribed ? 250 : 25, deadline - Date.now()));
    }
  }

  /** Writes an acquired token, sealed, with a TTL equal to its remaining life. */
  async save(key: string, token: StoredToken, user: string): Promise<void> {
    const names = this.namesOf(key, user);
    const generation = randomBytes(12).toString('base64url');
    this.known.set(token, { names, generation });
    const ttl = Math.floor(token.expiresAt - this.host.now());
    if (ttl < 1 || !this.available()) return;
    const plaintext = JSON.stringify({ v: token.value, e: token.expiresAt, r: token.renewAt, t: token.receivedAt, s: token.scope ?? null, f: token.fingerprint });
    try {
      await this.command(['EVAL', SAVE, '3', names.token, names.index, names.signedOut, this.ring.seal(plaintext, key, generation), String(ttl), names.id]);
    } catch (error) {
      this.failed(error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.waiters.values()].flatMap((set) => [...set])) wake();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribed = false;
    subscriber?.destroy();
  }

  /** A sealed value from Redis as a token; undefined (with a diagnostic) if it does not open. */
  private open(key: string, names: Names, value: string): StoredToken | undefined {
    try {
      const { plaintext, generation } = this.ring.open(value, key);
      const p = JSON.parse(plaintext) as Record<string, unknown>;
      if (typeof p.v !== 'string' || typeof p.e !== 'number' || typeof p.r !== 'number' || typeof p.t !== 'number' || typeof p.f !== 'string' || (p.s !== null && typeof p.s !== 'string')) {
        throw new Error('not a token');
      }
      // A generation refused with a 401 here is never taken again, even if its deletion failed.
      if (this.rejected.get(key) === generation) return undefined;
      const token: StoredToken = { value: p.v, expiresAt: p.e, renewAt: p.r, receivedAt: p.t, scope: p.s ?? undefined, fingerprint: p.f };
      this.known.set(token, { names, generation });
      return token;
    } catch (error) {
      this.diagnostic(`A token in Redis could not be decrypted (${describe(error)}); a new one is acquired and replaces it.`);
      return undefined;
    }
  }

  /** One Redis call, bounded by the store's own timeout; a late answer is ignored (never unhandled). */
  private async command(args: string[]): Promise<unknown> {
    if (!this.client.isReady) throw new Error('the client is not connected (connecting, reconnecting or closed)');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const sent = Promise.resolve().then(() => this.client.sendCommand(args));
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

  /** Releases the fleet lock and wakes the waiters, in the background (it expires anyway). */
  private release(names: Names, owner: string): void {
    if (this.closed) return;
    this.command(['EVAL', RELEASE, '1', names.lock, owner, this.channel, `d:${names.token}`]).catch((error: unknown) => this.failed(error));
  }

  /** True when Redis may be asked: it answers, or it failed long enough ago to be tried (once) again. */
  private available(): boolean {
    if (this.closed) return false;
    if (this.downSince === undefined) return true;
    const now = Date.now();
    if (now < this.retryAt) return false;
    this.retryAt = now + this.retryAfterMs;
    return true;
  }

  private failed(error: unknown): void {
    const now = Date.now();
    this.retryAt = now + this.retryAfterMs;
    if (this.downSince !== undefined) return;
    this.downSince = now;
    this.diagnostic(`Redis failed (${describe(error)}); tokens are acquired and kept in this process until it answers again (tried again every ${this.retryAfterMs} ms).`);
  }

  private recovered(): void {
    if (this.downSince === undefined) return;
    const since = this.downSince;
    this.downSince = undefined;
    this.diagnostic(`Redis answers again; tokens are shared with the fleet again.`, Date.now() - since);
  }

  /** Subscribes once, on its own connection, for wake-ups and fleet-wide sign-outs; polling covers its absence. */
  private listen(): void {
    if (this.subscriber || this.closed || typeof this.client.duplicate !== 'function') return;
    let subscriber: RedisSubscriberLike;
    try {
      subscriber = this.subscriber = this.client.duplicate();
    } catch (error) {
      this.subscriberFailed(error);
      return;
    }
    subscriber.on('error', (error) => this.subscriberFailed(error));
    // It must not keep the process alive on its own.
    subscriber.unref?.();
    subscriber
      .connect()
      .then(() => subscriber.subscribe(this.channel, (message) => this.onMessage(message)))
      .then(() => {
        if (this.subscriber !== subscriber) return;
        this.subscribed = true;
        this.subscriberTrouble = false;
      })
      .catch((error: unknown) => this.subscriberFailed(error));
  }

  private subscriberFailed(error: unknown): void {
    if (this.subscriberTrouble || this.closed) return;
    this.subscriberTrouble = true;
    this.diagnostic(`The Redis subscription failed (${describe(error)}); waits poll, and sign-outs in other processes reach this one's tokens only when they expire or are refused.`);
  }

  private onMessage(message: string): void {
    if (message.startsWith('d:')) {
      for (const wake of [...(this.waiters.get(message.slice(2)) ?? [])]) wake();
    } else if (message.startsWith('f:')) {
      const user = this.usersByHash.get(message.slice(2));
      if (user === undefined) return;
      this.local.deleteUser(user);
      this.host.forgetLocally?.(user);
    }
  }

  /** Drops `user` from the sign-out index once it holds no token of theirs and obtains none. */
  private unlist(user: string): void {
    const hash = this.namer.user(user);
    if (!this.obtaining.has(hash) && !this.local.holds(user)) this.usersByHash.delete(hash);
  }

  private waitFor(name: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(name);
      if (!set) this.waiters.set(name, (set = new Set()));
      const waiters = set;
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(name) === waiters) this.waiters.delete(name);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(ms, 1));
      waiters.add(wake);
    });
  }

  /**
   * Redis names: `<prefix>{<user hash>}:t:<key hash>` (token), `…:l:<key hash>` (lock),
   * `<prefix>{<user hash>}:i` (the user's index), `…:f` (the sign-out mark). Keyed hashes (see
   * naming.ts): a name never holds a token, a user key, a URL or a scope, nor a hash anyone could
   * compute from them. The braces are a Cluster hash tag: one user's keys share a slot.
   */
  private namesOf(key: string, user: string): Names {
    const u = this.namer.user(user);
    const id = this.namer.key(key);
    const tag = `${this.prefix}{${u}}`;
    return { token: `${tag}:t:${id}`, lock: `${tag}:l:${id}`, index: `${tag}:i`, signedOut: `${tag}:f`, id, user: u };
  }

  private diagnostic(message: string, durationMs = 0): void {
    this.host.emit({ type: 'diagnostic', message, durationMs });
  }
}

/**
 * A {@link TokenStore} that shares tokens across a fleet of processes through Redis (node-redis v6,
 * a peer dependency of this entry point only). The warm path never waits on Redis: this process's
 * LRU serves it. On a local miss Redis is read (one round trip); one process acquires per key while
 * the others wait (a `SET NX PX` lock, woken by pub/sub, bounded by `lockWaitMs`); the token is
 * written with a TTL equal to its remaining life, encrypted with AES-256-GCM (the cache key as
 * associated data), under a name that is an HMAC (`namingKey`); a 401 deletes it only if it is still
 * that token (compare-and-delete); `forget` removes a user's tokens from Redis and from every process
 * that holds tokens for the user. Redis failing (down, slow beyond
 * `commandTimeoutMs`, answering garbage, a value that does not decrypt) never fails a request: the
 * process acquires on its own, emits a `diagnostic` event, and uses Redis again once it answers.
 *
 * Throws a {@link ConfigurationError} for an empty key list, or an encryption or naming key that is
 * not 32 bytes.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { CrossAppAccess } from 'cross-app-access';
 * import { redisTokenStore } from 'cross-app-access/redis';
 *
 * const client = createClient({ url: process.env.REDIS_URL });
 * client.on('error', (error) => log.warn(error));
 * await client.connect();
 * const xaa = new CrossAppAccess({
 *   ...options,
 *   store: redisTokenStore({ client, prefix: 'xaa:', encryptionKeys: [process.env.XAA_TOKEN_KEY!], namingKey: process.env.XAA_NAMING_KEY }),
 * });
 * ```
 */
export function redisTokenStore(options: RedisTokenStoreOptions): RedisTokenStore {
  return new RedisStore(options);
}

function positive(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new ConfigurationError(option, 'expected a positive number of milliseconds');
  return value;
}

/** Sets `key` in a map kept to at most MAX_REMEMBERED entries, oldest dropped first. */
function remember(map: Map<string, string>, key: string, value: string): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as string);
}

function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return text.slice(0, 200);
}
