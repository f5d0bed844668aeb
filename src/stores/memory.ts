import { ConfigurationError } from '../errors.js';
import { LazyLru } from '../lazy-lru.js';
import type { StoredToken, TokenStore } from './token-store.js';
import { DEFAULTS } from '../options/defaults.js';

/**
 * Told when the store comes to hold a token of a user it held none of, and when it drops a user's
 * last token (evicted, refused or signed out). Internal: the Redis store keeps the users it must
 * reach with other processes' sign-outs in step with these.
 */
export interface HeldUsersListener {
  added(user: string): void;
  removed(user: string): void;
}

/**
 * A {@link TokenStore} in this process's memory: at most `max` tokens, least recently used dropped
 * first, with an index by user so a sign-out costs one lookup.
 */
export class MemoryTokenStore implements TokenStore {
  private readonly lru: LazyLru<string, StoredToken>;
  /** User → the keys of that user's tokens; kept in step with the LRU by its dispose hook. */
  private readonly byUser = new Map<string, Set<string>>();
  /** Key → user, for the dispose hook. */
  private readonly userOf = new Map<string, string>();
  /** Tokens no longer held (dropped, evicted or replaced): what {@link isCurrent} answers from. */
  private readonly gone = new WeakSet<StoredToken>();

  constructor(
    max: number,
    private readonly listener?: HeldUsersListener,
  ) {
    this.lru = new LazyLru<string, StoredToken>({
      max,
      dispose: (token, key, reason) => {
        this.gone.add(token);
        if (reason !== 'set') this.unindex(key);
      },
    });
  }

  get(key: string): StoredToken | undefined {
    return this.lru.built?.get(key);
  }

  /** Whether a token read from this store is still the one it holds under its key (no lookup by key). */
  isCurrent(token: StoredToken): boolean {
    return !this.gone.has(token);
  }

  set(key: string, token: StoredToken, user: string): void {
    const previous = this.userOf.get(key);
    if (previous !== undefined && previous !== user) this.unindex(key);
    this.lru.cache.set(key, token);
    // Stored (again, if the same token was set twice): current.
    this.gone.delete(token);
    this.userOf.set(key, user);
    let keys = this.byUser.get(user);
    if (!keys) {
      this.byUser.set(user, (keys = new Set()));
      this.listener?.added(user);
    }
    keys.add(key);
  }

  delete(key: string, token: StoredToken): boolean {
    const tokens = this.lru.built;
    if (tokens?.peek(key) !== token) return false;
    tokens.delete(key);
    return true;
  }

  deleteUser(user: string): void {
    // Each deletion unindexes its key (the dispose hook); the last one drops the user.
    for (const key of [...(this.byUser.get(user) ?? [])]) this.lru.built?.delete(key);
  }

  /** Whether it holds any token of `user`. */
  holds(user: string): boolean {
    return this.byUser.has(user);
  }

  get size(): number {
    return this.lru.built?.size ?? 0;
  }

  private unindex(key: string): void {
    const user = this.userOf.get(key);
    if (user === undefined) return;
    this.userOf.delete(key);
    const keys = this.byUser.get(user);
    keys?.delete(key);
    if (keys?.size !== 0) return;
    this.byUser.delete(user);
    this.listener?.removed(user);
  }
}

/**
 * The default {@link TokenStore}: tokens in this process's memory, least recently used dropped past
 * `max` (default 1000, or the engine's `maxCachedTokens`).
 *
 * @example
 * ```ts
 * const xaa = new CrossAppAccess({ ...options, store: memoryTokenStore({ max: 100_000 }) });
 * ```
 */
export function memoryTokenStore(options: { max?: number | undefined } = {}): TokenStore & {
  /** How many tokens it holds now. */
  readonly size: number;
} {
  return new MemoryTokenStore(checkedMax(options.max, 'store.max'));
}

/** A positive integer bound on tokens kept; undefined means the default, 1000. */
export function checkedMax(max: number | undefined, option: string): number {
  if (max === undefined) return DEFAULTS.maxCachedTokens;
  if (!Number.isInteger(max) || max < 1) throw new ConfigurationError(option, 'expected a positive integer');
  return max;
}
