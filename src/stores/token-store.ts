import type { CrossAppAccessEvent } from '../events.js';

/**
 * An access token as the engine keeps it. ID-JAGs, ID tokens and secrets are never stored: renewal
 * means a new ID-JAG, so IdP policy is checked again (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.3).
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
  /**
   * `'DPoP'` for a token bound to a DPoP key (RFC 9449 §5): it is only ever sent as `Authorization:
   * DPoP` with a proof of that key, never as Bearer. Absent for a Bearer token.
   */
  readonly tokenType?: 'DPoP' | undefined;
  /** For a DPoP token: the RFC 7638 thumbprint of the key it is bound to (RFC 9449 §6). */
  readonly jkt?: string | undefined;
}

/**
 * Where an engine keeps access tokens, by cache key (the IdP and the client id there, the
 * authorization server and the client id there, the resource, the scope set, and the user) and by user. The default is in memory ({@link memoryTokenStore});
 * a shared store (`cross-app-access/redis`) lets a fleet of processes share them. `get` is
 * synchronous because the warm path does no I/O.
 *
 * @example
 * ```ts
 * const xaa = new CrossAppAccess({ ...options, store: memoryTokenStore({ max: 50_000 }) });
 * ```
 */
export interface TokenStore {
  /** The token under `key`, if any, without I/O (the warm path); the engine checks expiry. */
  get(key: string): StoredToken | undefined;
  /**
   * Optional: whether `token`, read from this store with {@link get}, is still the one held under its
   * key (not dropped, evicted or replaced since), without a lookup by key: the warm path of a user
   * who asks for the same key again and again checks this instead. Must never answer true for a
   * token the store no longer holds.
   */
  isCurrent?(token: StoredToken): boolean;
  /** Stores `token` under `key`, for `user` (the application's user key; '' for a one-user wrapper). */
  set(key: string, token: StoredToken, user: string): void;
  /**
   * Drops `token` if it is still the one under `key` (a compare-and-delete); says whether it did
   * here. A store with a second level also drops it there, in the background, if it is still the one
   * there (a token the fleet already replaced is left alone).
   */
  delete(key: string, token: StoredToken): boolean;
  /** Drops every token of `user` (sign-out), in every level of the store. */
  deleteUser(user: string): void | Promise<void>;
  /**
   * Optional: a second level shared by a fleet of processes. On a local miss (and for a renewal) the
   * engine calls this instead of acquiring directly: it answers with the fleet's token for `key` if
   * `shared.usable` says it will do, else runs `shared.acquire` (one acquisition per key across the
   * fleet, waiters bounded) and answers with its token. It rejects only with `acquire`'s own error:
   * the second level failing falls back to `acquire`.
   */
  obtain?(key: string, user: string, shared: SharedAcquisition): Promise<StoredToken>;
  /** Optional: writes an acquired token to the second level (never rejects; failures are reported). */
  save?(key: string, token: StoredToken, user: string): Promise<void>;
  /**
   * Optional: a discovery result another process of the fleet kept under `name` (protected-resource,
   * authorization-server or IdP metadata, validated), with its remaining life in ms; undefined when
   * there is none or it cannot be read. A shared store must seal what it keeps (whoever can write to
   * it must not be able to change where credentials or tokens go) and never reject.
   */
  readDocument?(name: string): Promise<StoredDocument | undefined>;
  /** Optional: keeps a discovery result under `name` for `ttlMs`, for the fleet (in the background, never throws). */
  writeDocument?(name: string, value: unknown, ttlMs: number): void;
  /** Optional: called once by the engine that uses the store, with its clock and its event emitter. */
  attach?(host: TokenStoreHost): void;
}

/**
 * What the engine hands a store's {@link TokenStore.obtain}: whether a token found in the second
 * level will do, and the acquisition to run when none does (it saves its token through
 * {@link TokenStore.save} unless its user signed out meanwhile).
 *
 * @example
 * ```ts
 * const token = await store.obtain!(key, user, { usable: (t) => Date.now() < t.expiresAt, acquire });
 * ```
 */
export interface SharedAcquisition {
  /** Whether a token found in the store (the second level) will do: not expired (for a background renewal: not due for renewal). */
  usable(token: StoredToken): boolean;
  /** Acquires a new token (exchange and grant) and saves it; call it when no stored token is usable. */
  acquire(): Promise<StoredToken>;
  /**
   * The longest an acquisition may take (every attempt timing out, every retry wait at its longest),
   * in ms: how long another process's acquisition is worth waiting for while its lock stands.
   */
  maxDurationMs?: number | undefined;
}

/**
 * The engine, as a store sees it: its clock (epoch ms, the `now` option) and its events (a store
 * reports its own trouble as `diagnostic` events).
 *
 * @example
 * ```ts
 * store.attach?.({ now: Date.now, emit: (event) => console.log(event.type) });
 * ```
 */
export interface TokenStoreHost {
  /** The engine's clock, in epoch milliseconds (its `now` option). */
  now(): number;
  /** Reports an event through the engine's `onEvent` and diagnostics channels (a store's own trouble as `diagnostic`). */
  emit(event: CrossAppAccessEvent): void;
  /**
   * Another process signed `user` out: the engine forgets the user here too, so an acquisition
   * under way for them keeps (and saves) nothing.
   */
  forgetLocally?(user: string): void;
}

/**
 * A discovery result a fleet's store kept ({@link TokenStore.readDocument}).
 *
 * @example
 * ```ts
 * const found: StoredDocument | undefined = await store.readDocument?.('authorization_server https://auth.example.com');
 * ```
 */
export interface StoredDocument {
  /** The document, as the process that validated it kept it. */
  value: unknown;
  /** How long it is still good for, in ms (its hour, less the time since it was kept). */
  remainingMs: number;
}
