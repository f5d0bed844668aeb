import { randomBytes } from 'node:crypto';
import { ConfigurationError, CrossAppAccessError } from '../errors.js';
import { KeyRing, generationPrefix } from './encryption.js';
import { MemoryTokenStore, checkedMax } from './memory.js';
import { Namer } from './naming.js';
import { DELETE_IF_GENERATION, DELETE_TOKENS, EXTEND, GET_OR_LOCK, READ_DOCUMENT, RELEASE, SAVE, SIGN_OUT } from './redis-scripts.js';
import { RedisChannel } from './redis-channel.js';
import { redisConnection } from './redis-client.js';
import { RedisLink, describeRedisError } from './redis-link.js';
import type { RedisTokenStore, RedisTokenStoreOptions } from './redis-types.js';
import type { SharedAcquisition, StoredDocument, StoredToken, TokenStoreHost } from './token-store.js';
import { LazyLru } from '../lazy-lru.js';
import { DEFAULTS } from '../options/defaults.js';

export type { IORedisLike, IORedisSubscriberLike, RedisClientLike, RedisClusterLike, RedisSubscriberLike, RedisTokenStore, RedisTokenStoreOptions } from './redis-types.js';

/** However long an acquisition may take, no process waits longer than this for another's. */
const MAX_LOCK_WAIT_MS = 5 * 60_000;

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
  private readonly prefix: string;
  private readonly link: RedisLink;
  private readonly channel: RedisChannel;
  private readonly lockTtlMs: number;
  private readonly commandTimeoutMs: number;
  private readonly lockWaitMs: number;
  private host: TokenStoreHost = { now: Date.now, emit: () => {} };
  private readonly known = new WeakMap<StoredToken, Known>();
  /** Cache key → the generation a 401 refused: never taken from Redis again. */
  private readonly rejected = new LazyLru<string, string>({ max: DEFAULTS.maxRejectedGenerations });
  /**
   * User hash → user key, for sign-outs announced by other processes: exactly the users this
   * process holds tokens for (kept in step with the LRU) or is obtaining one for, however many.
   */
  private readonly usersByHash = new Map<string, string>();
  /** User hash → how many of `obtain` are under way for that user. */
  private readonly obtaining = new Map<string, number>();

  constructor(options: RedisTokenStoreOptions) {
    const connection = redisConnection(options?.client);
    this.ring = new KeyRing(options.encryptionKeys);
    this.namer = new Namer(options.namingKey, this.ring);
    this.local = new MemoryTokenStore(checkedMax(options.max, 'max'), {
      added: (user) => this.usersByHash.set(this.namer.user(user), user),
      removed: (user) => this.unlist(user),
    });
    this.prefix = options.prefix ?? 'xaa:';
    if (typeof this.prefix !== 'string') throw new ConfigurationError('prefix', 'expected a string');
    checkHashTag(this.prefix);
    const report = (message: string, durationMs = 0) => this.host.emit({ type: 'diagnostic', message, durationMs });
    this.commandTimeoutMs = positive(options.commandTimeoutMs, 200, 'commandTimeoutMs');
    this.link = new RedisLink(connection, this.commandTimeoutMs, positive(options.retryAfterMs, 1_000, 'retryAfterMs'), report);
    this.channel = new RedisChannel(connection, this.link, `${this.prefix}events`, (hash) => this.signedOutElsewhere(hash), report);
    this.lockTtlMs = positive(options.lockTtlMs, 15_000, 'lockTtlMs');
    this.lockWaitMs = positive(options.lockWaitMs, 5_000, 'lockWaitMs');
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

  isCurrent(token: StoredToken): boolean {
    return this.local.isCurrent(token);
  }

  /** A 401: drops the token here, and in Redis if it is still that generation there (in the background). */
  delete(key: string, token: StoredToken): boolean {
    const dropped = this.local.delete(key, token);
    const known = this.known.get(token);
    if (known && this.rejected.built?.get(key) !== known.generation) {
      this.rejected.cache.set(key, known.generation);
      if (this.link.available()) this.link.background(['EVAL', DELETE_IF_GENERATION, '1', known.names.token, generationPrefix(known.generation)]);
    }
    return dropped;
  }

  /** Sign-out across the fleet: Redis's copies and the index, and every process's own (by a message). */
  async deleteUser(user: string): Promise<void> {
    this.local.deleteUser(user);
    const names = this.namesOf('', user);
    if (this.link.closed) return;
    try {
      // Two steps, so every key each script touches is in its KEYS (one slot on a cluster): the
      // mark keeps saves out while the listed tokens are deleted.
      const ids = await this.link.command(['EVAL', SIGN_OUT, '2', names.signedOut, names.index, String(this.lockTtlMs), randomBytes(12).toString('base64url')]);
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) throw new Error('an answer that is not the reply of this store\'s script');
      const tokens = (ids as string[]).map((id) => this.tokenName(names.user, id));
      await this.link.command(['EVAL', DELETE_TOKENS, String(1 + tokens.length), names.index, ...tokens]);
    } catch (error) {
      throw this.signOutFailed(error, 'not in Redis');
    }
    // Awaited: forget() resolves once every process has been told.
    try {
      await this.channel.publish(RedisChannel.signOutMessage(names.user));
    } catch (error) {
      throw this.signOutFailed(error, 'in Redis, but other processes were not told');
    }
  }

  private signOutFailed(error: unknown, where: string): CrossAppAccessError {
    this.link.failed(error);
    return new CrossAppAccessError(`The user's tokens were dropped in this process, ${where} (${describeRedisError(error)}): other processes may use their copies until they expire. Call forget() again.`, {
      code: 'network_error',
      stage: 'request',
      cause: error,
    });
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
    if (!this.link.available()) return shared.acquire();
    // Subscribed before Redis is read, so no sign-out can slip between the read and the subscription
    // (waited for once per process, at most one command timeout).
    await this.channel.listen(this.commandTimeoutMs);
    const owner = randomBytes(12).toString('base64url');
    const started = Date.now();
    // Waiting past lockWaitMs only while another process's lock stands (its holder extends it while
    // it acquires), and never longer than an acquisition of ours could take.
    const longest = started + Math.min(Math.max(this.lockWaitMs, shared.maxDurationMs ?? 0), MAX_LOCK_WAIT_MS);
    let force = false;
    // A value that did not open is reported once, not on every look.
    let unopened: string | undefined;
    while (true) {
      let reply: unknown;
      try {
        reply = await this.link.command(['EVAL', GET_OR_LOCK, '3', names.token, names.lock, names.signedOut, owner, String(this.lockTtlMs), force ? '1' : '0']);
      } catch (error) {
        this.link.failed(error);
        return shared.acquire();
      }
      if (!Array.isArray(reply) || !nilOrString(reply[0]) || (reply[1] !== 0 && reply[1] !== 1) || (reply[2] !== 0 && reply[2] !== 1) || !nilOrString(reply[3])) {
        this.link.failed(new Error('an answer that is not the reply of this store\'s script'));
        return shared.acquire();
      }
      const value = reply[0] as string | null;
      // The user's sign-out mark as this acquisition starts: another one while it runs is a sign-out.
      const mark = typeof reply[3] === 'string' ? reply[3] : undefined;
      const token = value === null || value === unopened ? undefined : this.open(key, names, value);
      if (value !== null && !token) unopened = value;
      const locked = reply[1] === 1;
      if (token && shared.usable(token)) {
        if (locked) this.release(names, owner);
        return token;
      }
      if (locked) return this.acquireWatching(names, mark, shared, owner);
      const heldElsewhere = reply[2] === 1;
      const deadline = heldElsewhere ? longest : started + this.lockWaitMs;
      if (Date.now() >= deadline) {
        this.diagnostic(`Another process's acquisition of a token did not finish within ${deadline - started} ms; this process acquires its own.`);
        return this.acquireWatching(names, mark, shared);
      }
      // Someone else acquires: wait for its message (or poll, should a message be lost).
      force = true;
      await this.channel.waitFor(names.token, Math.min(this.channel.subscribed ? 250 : 25, deadline - Date.now()));
    }
  }

  /**
   * Acquires, watching the user's sign-out mark every third of the lock's TTL (the mark stands that
   * long, so no sign-out is missed while Redis answers): a sign-out while the acquisition runs
   * reaches it even if its message did not reach this process, so the token is neither kept nor saved
   * once the mark has expired. While it holds the fleet lock (`owner`), the lock is extended
   * meanwhile, so no other process starts the same acquisition however long it takes; then released.
   */
  private async acquireWatching(names: Names, startMark: string | undefined, shared: SharedAcquisition, owner?: string): Promise<StoredToken> {
    let told = false;
    const watch = setInterval(() => {
      if (this.link.closed) return;
      this.link.command(['EVAL', EXTEND, '2', names.lock, names.signedOut, owner ?? '', String(this.lockTtlMs)]).then(
        (mark) => {
          if (told || typeof mark !== 'string' || mark === startMark) return;
          told = true;
          this.signedOutElsewhere(names.user);
        },
        (error: unknown) => this.link.failed(error),
      );
    }, Math.max(this.lockTtlMs / 3, 10));
    // The interval must not keep the process alive on its own: the acquisition's caller does.
    (watch as { unref?: () => void }).unref?.();
    try {
      return await shared.acquire();
    } finally {
      clearInterval(watch);
      if (owner !== undefined) this.release(names, owner);
    }
  }

  /**
   * A discovery result another process kept, opened (sealed under the key ring, its name as
   * associated data: a value copied under another name, or altered, does not open), for the
   * shorter of its TTL and the end sealed with it.
   */
  async readDocument(name: string): Promise<StoredDocument | undefined> {
    if (!this.link.available()) return undefined;
    let reply: unknown;
    try {
      reply = await this.link.command(['EVAL', READ_DOCUMENT, '1', this.documentName(name)]);
    } catch (error) {
      this.link.failed(error);
      return undefined;
    }
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') return undefined;
    try {
      const sealed = JSON.parse(this.ring.open(reply[0], documentContext(name)).plaintext) as { x?: unknown; v?: unknown };
      if (typeof sealed?.x !== 'number' || !('v' in sealed)) throw new Error('not a discovery result');
      // Its end is sealed with it: a value set again with a fresh TTL (by whoever can write to Redis) ends all the same.
      return { value: sealed.v, remainingMs: Math.min(reply[1], sealed.x - this.host.now()) };
    } catch (error) {
      this.diagnostic(`A discovery result in Redis could not be decrypted (${describeRedisError(error)}); it is discovered again and replaced.`);
      return undefined;
    }
  }

  /** Keeps a discovery result, sealed with its end (now + `ttlMs`), for `ttlMs` (in the background). */
  writeDocument(name: string, value: unknown, ttlMs: number): void {
    if (!this.link.available()) return;
    const ttl = Math.max(1, Math.floor(ttlMs));
    const sealed = this.ring.seal(JSON.stringify({ x: this.host.now() + ttl, v: value }), documentContext(name), randomBytes(12).toString('base64url'));
    this.link.background(['SET', this.documentName(name), sealed, 'PX', String(ttl)]);
  }

  /** `<prefix>d:<keyed hash>`: a name never holds a URL or an issuer. */
  private documentName(name: string): string {
    return `${this.prefix}d:${this.namer.key(documentContext(name))}`;
  }

  /** Writes an acquired token, sealed, with a TTL equal to its remaining life. */
  async save(key: string, token: StoredToken, user: string): Promise<void> {
    const names = this.namesOf(key, user);
    const generation = randomBytes(12).toString('base64url');
    this.known.set(token, { names, generation });
    const ttl = Math.floor(token.expiresAt - this.host.now());
    if (ttl < 1 || !this.link.available()) return;
    const plaintext = JSON.stringify({ v: token.value, e: token.expiresAt, r: token.renewAt, t: token.receivedAt, s: token.scope ?? null, f: token.fingerprint, ...(token.tokenType === 'DPoP' ? { k: 'DPoP', j: token.jkt } : {}) });
    try {
      await this.link.command(['EVAL', SAVE, '3', names.token, names.index, names.signedOut, this.ring.seal(plaintext, key, generation), String(ttl), names.id]);
    } catch (error) {
      this.link.failed(error);
    }
  }

  async close(): Promise<void> {
    this.link.closed = true;
    this.channel.close();
  }

  /** A sealed value from Redis as a token; undefined (with a diagnostic) if it does not open. */
  private open(key: string, names: Names, value: string): StoredToken | undefined {
    try {
      const { plaintext, generation } = this.ring.open(value, key);
      const p = JSON.parse(plaintext) as Record<string, unknown>;
      if (typeof p.v !== 'string' || typeof p.e !== 'number' || typeof p.r !== 'number' || typeof p.t !== 'number' || typeof p.f !== 'string' || (p.s !== null && typeof p.s !== 'string') || (p.k !== undefined && (p.k !== 'DPoP' || typeof p.j !== 'string'))) {
        throw new Error('not a token');
      }
      // A generation refused with a 401 here is never taken again, even if its deletion failed.
      if (this.rejected.built?.get(key) === generation) return undefined;
      const token: StoredToken = { value: p.v, expiresAt: p.e, renewAt: p.r, receivedAt: p.t, scope: p.s ?? undefined, fingerprint: p.f, ...(p.k === 'DPoP' ? { tokenType: 'DPoP' as const, jkt: p.j as string } : {}) };
      this.known.set(token, { names, generation });
      return token;
    } catch (error) {
      this.diagnostic(`A token in Redis could not be decrypted (${describeRedisError(error)}); a new one is acquired and replaces it.`);
      return undefined;
    }
  }

  /** Releases the fleet lock and wakes the waiters, in the background (it expires anyway). */
  private release(names: Names, owner: string): void {
    this.link.background(['EVAL', RELEASE, '1', names.lock, owner]);
    this.channel.publish(RedisChannel.wakeMessage(names.token)).catch((error: unknown) => this.link.failed(error));
  }

  /** Another process signed out the user with this hash: their tokens and state here go too. */
  private signedOutElsewhere(hash: string): void {
    const user = this.usersByHash.get(hash);
    if (user === undefined) return;
    this.local.deleteUser(user);
    this.host.forgetLocally?.(user);
  }

  /** Drops `user` from the sign-out index once it holds no token of theirs and obtains none. */
  private unlist(user: string): void {
    const hash = this.namer.user(user);
    if (!this.obtaining.has(hash) && !this.local.holds(user)) this.usersByHash.delete(hash);
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
    return { token: this.tokenName(u, id), lock: `${tag}:l:${id}`, index: `${tag}:i`, signedOut: `${tag}:f`, id, user: u };
  }

  private tokenName(userHash: string, id: string): string {
    return `${this.prefix}{${userHash}}:t:${id}`;
  }

  private diagnostic(message: string): void {
    this.host.emit({ type: 'diagnostic', message, durationMs: 0 });
  }
}

/**
 * A {@link TokenStore} that shares tokens across a fleet of processes through Redis: the
 * application's node-redis client or cluster (`createClient`, `createCluster`; v6) or ioredis
 * `Redis` or `Cluster` (5 or 6), told apart by their shape (optional peer dependencies of this
 * entry point only; nothing imports them). On a Redis Cluster every script keeps its keys in the
 * user's slot and pub/sub is sharded where the servers have it. The warm path never waits on Redis: this process's
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
 *
 * @example
 * ```ts
 * // A Redis Cluster, with node-redis or with ioredis.
 * import { createCluster } from 'redis';
 * import { Cluster } from 'ioredis';
 *
 * const cluster = createCluster({ rootNodes: [{ url: 'redis://10.0.0.1:6379' }] });
 * await cluster.connect();
 * const store = redisTokenStore({ client: cluster, encryptionKeys: [process.env.XAA_TOKEN_KEY!] });
 * const viaIoredis = redisTokenStore({ client: new Cluster([{ host: '10.0.0.1', port: 6379 }]), encryptionKeys: [process.env.XAA_TOKEN_KEY!] });
 * ```
 */
export function redisTokenStore(options: RedisTokenStoreOptions): RedisTokenStore {
  return new RedisStore(options);
}

/**
 * The part of a key Redis Cluster hashes to pick its slot: between the first `{` and the next `}`,
 * if not empty; else the whole key (Redis Cluster specification, "Hash tags").
 */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
}

/** A prefix whose braces would split one user's keys over several slots (e.g. `a{}`) is refused. */
function checkHashTag(prefix: string): void {
  const tags = ['t:k', 'l:k', 'i', 'f'].map((suffix) => hashTag(`${prefix}{u}:${suffix}`));
  if (tags.some((tag) => tag !== tags[0])) {
    throw new ConfigurationError('prefix', 'its braces would put one user\'s keys in different Redis Cluster slots (use a prefix without `{}`, or with a non-empty `{tag}`)');
  }
}

/** A script's string or nil (a Lua false, e.g. GET of a missing key) in its reply. */
function nilOrString(value: unknown): boolean {
  return value === null || typeof value === 'string';
}

function positive(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new ConfigurationError(option, 'expected a positive number of milliseconds');
  return value;
}

/** The associated data of a sealed discovery result: its kind and its name (never a token's cache key). */
function documentContext(name: string): string {
  return `discovery\u0000${name}`;
}
