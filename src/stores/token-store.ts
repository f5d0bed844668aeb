/**
 * An access token as the engine keeps it. ID-JAGs, ID tokens and secrets are never stored: renewal
 * means a new ID-JAG, so IdP policy is checked again (ID-JAG draft §4.4.3).
 *
 * @example
 * ```ts
 * const usable = (token: StoredToken, now = Date.now()) => now < token.expiresAt;
 * ```
 */
export interface StoredToken {
  /** The access token itself: a secret. */
  readonly value: string;
  /** Epoch ms after which the token is never sent. */
  readonly expiresAt: number;
  /** Epoch ms from which a new token is acquired in the background, while this one is still served. */
  readonly renewAt: number;
  /** Epoch ms when it was received. */
  readonly receivedAt: number;
  /** The scope the authorization server granted (or that was requested, when it did not say). */
  readonly scope: string | undefined;
  /** The first 8 hex digits of the token's SHA-256: what events and messages show instead of it. */
  readonly fingerprint: string;
}

/**
 * Where an engine keeps access tokens, by cache key (authorization-server issuer, client id,
 * resource, scope set and user) and by user. The default is in memory ({@link memoryTokenStore});
 * a shared store (`cross-app-access/redis`) lets a fleet of processes share them. `get` is
 * synchronous because the warm path does no I/O.
 *
 * @example
 * ```ts
 * const xaa = new CrossAppAccess({ ...options, store: memoryTokenStore({ max: 50_000 }) });
 * ```
 */
export interface TokenStore {
  /** The token under `key`, if any; the engine checks expiry. */
  get(key: string): StoredToken | undefined;
  /** Stores `token` under `key`, for `user` (the application's user key; '' for a one-user wrapper). */
  set(key: string, token: StoredToken, user: string): void;
  /** Drops `token` if it is still the one under `key` (a compare-and-delete); says whether it did. */
  delete(key: string, token: StoredToken): boolean;
  /** Drops every token of `user` (sign-out). */
  deleteUser(user: string): void | Promise<void>;
}
