import { LRUCache } from 'lru-cache';
import { ConfigurationError } from '../errors.js';
import type { StoredToken, TokenStore } from './token-store.js';

/**
 * A {@link TokenStore} in this process's memory: at most `max` tokens, least recently used dropped
 * first, with an index by user so a sign-out costs one lookup.
 */
class MemoryTokenStore implements TokenStore {
  // Made on first use: lru-cache allocates its arrays up front, and a one-user wrapper may never need it.
  private lru: LRUCache<string, StoredToken> | undefined;
  /** User → the keys of that user's tokens; kept in step with the LRU by its dispose hook. */
  private readonly byUser = new Map<string, Set<string>>();
  /** Key → user, for the dispose hook. */
  private readonly userOf = new Map<string, string>();

  constructor(private readonly max: number) {}

  private get tokens(): LRUCache<string, StoredToken> {
    return (this.lru ??= new LRUCache<string, StoredToken>({
      max: this.max,
      dispose: (_token, key, reason) => {
        if (reason !== 'set') this.unindex(key);
      },
    }));
  }

  get(key: string): StoredToken | undefined {
    return this.lru?.get(key);
  }

  set(key: string, token: StoredToken, user: string): void {
    const previous = this.userOf.get(key);
    if (previous !== undefined && previous !== user) this.unindex(key);
    this.tokens.set(key, token);
    this.userOf.set(key, user);
    let keys = this.byUser.get(user);
    if (!keys) this.byUser.set(user, (keys = new Set()));
    keys.add(key);
  }

  delete(key: string, token: StoredToken): boolean {
    if (this.lru?.peek(key) !== token) return false;
    this.lru.delete(key);
    return true;
  }

  deleteUser(user: string): void {
    for (const key of [...(this.byUser.get(user) ?? [])]) this.lru?.delete(key);
    this.byUser.delete(user);
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  private unindex(key: string): void {
    const user = this.userOf.get(key);
    if (user === undefined) return;
    this.userOf.delete(key);
    const keys = this.byUser.get(user);
    keys?.delete(key);
    if (keys?.size === 0) this.byUser.delete(user);
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
export function memoryTokenStore(options: { max?: number } = {}): TokenStore & {
  /** How many tokens it holds now. */
  readonly size: number;
} {
  const max = options.max ?? 1000;
  if (!Number.isInteger(max) || max < 1) throw new ConfigurationError('store.max', 'expected a positive integer');
  return new MemoryTokenStore(max);
}
