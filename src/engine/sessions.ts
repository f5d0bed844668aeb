import { ConfigurationError, CrossAppAccessError } from '../errors.js';
import type { IdTokenSource, UserIdTokenSource } from '../options/types.js';
import type { SessionResolver } from './authorize.js';
import type { Engine } from './engine.js';
import { requireUserKeyLength } from './users.js';
import { noIdToken } from '../options/workload-options.js';

/**
 * Who a fetch made by {@link CrossAppAccess.fetch} acts for: a fixed user key, or a function called
 * on every request that returns the current request's user key (from AsyncLocalStorage, a header the
 * gateway set…). It is given the call's arguments, as the fetch was called (`input`, `init`, and
 * anything after: Mastra passes its `requestContext` third), so a framework that passes context
 * explicitly needs no AsyncLocalStorage. `undefined` or `''` means "no user": a request to a
 * protected resource then fails closed with `unknown_user`.
 *
 * @example
 * ```ts
 * const user: UserSource = () => requestContext.getStore()?.userId;
 * const fromMastra: UserSource = (_input, _init, requestContext) => requestContext?.get('userId');
 * ```
 */
// `any` so that a function naming its own parameter types (a framework's context) fits.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type UserSource = string | ((...call: any[]) => string | undefined);

/**
 * A user's session for {@link CrossAppAccess.fetch}: who, and where their ID tokens come from.
 *
 * @example
 * ```ts
 * const session: FetchSession = { user: 'alice', idToken: ({ reason }) => sso.idToken('alice', { refresh: reason !== 'initial' }) };
 * ```
 */
export interface FetchSession {
  /** The application's user key, or a function that returns the current request's (see {@link UserSource}). */
  user: UserSource;
  /**
   * The user's ID token, or a function called (with `{ user, reason, signal }`) when a new access
   * token is needed. Required, except with an engine's `assertion` (workload identity), which takes none.
   */
  idToken?: string | UserIdTokenSource | undefined;
  /**
   * With several IdPs: the issuer of the IdP of the request's user (one of `idp`), fixed or read on
   * every request like `user`. Users are then kept per IdP (the same key at two IdPs is two users),
   * and an ID token from another IdP is refused. Without it, each user's IdP is the one their first ID
   * token names, and user keys must be unique across enterprises (e.g. `${tenant}:${userId}`).
   *
   * @example
   * ```ts
   * const session: FetchSession = { user: () => ctx.getStore()?.userId, idp: () => ctx.getStore()?.idpIssuer, idToken };
   * ```
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  idp?: string | ((...call: any[]) => string | undefined) | undefined;
}

/** The per-request resolver of a {@link FetchSession}'s user (and IdP); a fixed user is resolved once. */
export function sessionResolver(engine: Engine, session: FetchSession): SessionResolver {
  const { user, idToken, idp } = session ?? {};
  if (typeof user !== 'string' && typeof user !== 'function') {
    throw new ConfigurationError('user', 'is required: a user key (string) or a function returning the current request\'s user key');
  }
  if (idp !== undefined && typeof idp !== 'string' && typeof idp !== 'function') {
    throw new ConfigurationError('idp', 'expected the issuer of one of the engine\'s IdPs, or a function returning the current request\'s');
  }
  const read = readerOf(idToken, 'fetch', engine.options.assertion !== undefined);
  const isStatic = typeof idToken === 'string';
  if (typeof user === 'string' && typeof idp !== 'function') {
    const key = requireUser(user);
    let fixed = engine.session(key, read, isStatic, idp);
    // Resolved again once the user was forgotten (sign-out), so the key starts afresh.
    return () => (fixed.user.current ? fixed : (fixed = engine.session(key, read, isStatic, idp)));
  }
  // The call's arguments reach the functions as the fetch got them; no array is made unless the
  // call had more than two (the warm path allocates nothing for it).
  return (input, init, rest) => {
    const key = typeof user === 'string' ? user : withCall(user, input, init, rest);
    if (typeof key !== 'string' || key === '') return undefined;
    const issuer = typeof idp === 'function' ? withCall(idp, input, init, rest) : idp;
    // A request whose IdP cannot be told fails closed, as one with no user does.
    if (typeof idp === 'function' && (typeof issuer !== 'string' || issuer === '')) return undefined;
    return engine.session(key, read, isStatic, issuer);
  };
}

/** Calls `f` with a fetch call's arguments, making no array for the usual two. */
function withCall<T>(f: (...call: unknown[]) => T, input: unknown, init: unknown, rest: readonly unknown[] | undefined): T {
  return rest === undefined ? f(input, init) : f(input, init, ...rest);
}

export function readerOf(idToken: string | UserIdTokenSource | undefined, where: string, workload = false): IdTokenSource {
  if (workload) {
    if (idToken === undefined) return noIdToken;
    throw new ConfigurationError('idToken', `is not taken by ${where} of an engine with assertion (workload identity): the engine's assertion is asked, told the user key`);
  }
  // The engine always tells a user's source its user key.
  if (typeof idToken === 'function') return idToken as IdTokenSource;
  if (typeof idToken === 'string' && idToken !== '') return () => idToken;
  throw new ConfigurationError('idToken', `is required by ${where}: the user's ID token, or a function returning it`);
}

export function requireUser(user: unknown): string {
  if (typeof user === 'string' && user !== '') {
    requireUserKeyLength(user);
    return user;
  }
  throw new CrossAppAccessError('No user key was given; nothing was done. Pass the application\'s key of the signed-in user.', { code: 'unknown_user', stage: 'request' });
}
