import type { ClientAuthMethod, ClientCredentials } from '../oauth/client-auth.js';
import type { SubjectTokenType } from '../oauth/grants.js';
import type { RetryPolicy } from '../oauth/retry.js';
import type { CrossAppAccessEvent } from '../events.js';
import type { CompatibleFetch, FetchLike } from '../fetch-types.js';
import type { TokenStore } from '../stores/token-store.js';
import type { ResourceBoundary } from '../url-rules.js';
import type { WorkloadAssertionSource } from './workload-types.js';
import type { DpopOption } from '../oauth/dpop/key.js';

/**
 * Why the package is asking for an ID token: `'initial'`, `'renewal'`, `'rejected'` (the IdP refused
 * the last one: refresh it), or `'reauthenticate'` (the IdP wants a more recent sign-in than the last
 * one shows, within `maxAge` seconds when it said: the user must authenticate again, draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3).
 *
 * @example
 * ```ts
 * const idToken = ({ reason, maxAge }: { reason: IdTokenReason; maxAge?: number }) =>
 *   reason === 'reauthenticate' ? sso.signInAgain({ maxAge }) : sso.getIdToken({ forceRefresh: reason === 'rejected' });
 * ```
 */
export type IdTokenReason = 'initial' | 'renewal' | 'rejected' | 'reauthenticate';

/**
 * Returns the signed-in user's ID token from the app's SSO session. Called only when a new access
 * token is needed: `reason` is `'initial'` for the first, `'renewal'` when a token expired,
 * `'rejected'` when the IdP refused the previous ID token (force a refresh then), and
 * `'reauthenticate'` when the IdP answered `insufficient_user_authentication`: the user must sign in
 * again (e.g. OIDC `prompt=login`, or `max_age=<maxAge>`), since a refreshed ID token keeps the old
 * `auth_time`. `maxAge` (seconds) is set only then, when the IdP gave one. Each of `'rejected'` and
 * `'reauthenticate'` is asked at most once per acquisition; if the IdP still refuses, the request
 * fails with `login_required` or `insufficient_user_authentication`.
 *
 * @example
 * ```ts
 * const idToken: IdTokenSource = async ({ reason, signal, maxAge }) =>
 *   reason === 'reauthenticate'
 *     ? (await oidcClient.signIn({ prompt: 'login', maxAge, signal })).id_token
 *     : (await oidcClient.refresh({ force: reason !== 'initial', signal })).id_token;
 * ```
 */
export type IdTokenSource = (context: IdTokenContext) => string | Promise<string>;

/**
 * The `idToken` function of a user of {@link CrossAppAccess} (`xaa.fetch`, `getAccessToken`, the
 * undici interceptor): as {@link IdTokenSource}, told the user key it is for, which is always set.
 *
 * @example
 * ```ts
 * const idToken: UserIdTokenSource = ({ user, reason }) => sessions.idTokenFor(user, { forceRefresh: reason !== 'initial' });
 * ```
 */
export type UserIdTokenSource = (context: UserIdTokenContext) => string | Promise<string>;

/**
 * What a {@link UserIdTokenSource} is told: an {@link IdTokenContext} whose `user` is always set.
 *
 * @example
 * ```ts
 * const forUser = ({ user, signal }: UserIdTokenContext) => sessions.idTokenFor(user, { signal });
 * ```
 */
export interface UserIdTokenContext extends IdTokenContext {
  /** The application's user key the token is for. */
  user: string;
}

/**
 * What an {@link IdTokenSource} is told: why a token is needed, a signal that aborts after `timeout`,
 * the user key it is for (absent for a one-user wrapper), and `maxAge` with `'reauthenticate'`.
 *
 * @example
 * ```ts
 * const idToken = ({ reason, signal }: IdTokenContext) => sso.getIdToken({ forceRefresh: reason !== 'initial', signal });
 * ```
 */
export interface IdTokenContext {
  /** Why a token is needed: see {@link IdTokenReason}. */
  reason: IdTokenReason;
  /** Aborts when `timeout` runs out: pass it on to the IdP or SSO call that gets the token. */
  signal: AbortSignal;
  /** The application's user key the token is for ({@link CrossAppAccess}; see {@link UserIdTokenContext}); absent for a one-user wrapper. */
  user?: string;
  /** Seconds, with `'reauthenticate'`, when the IdP said how recent the sign-in must be. */
  maxAge?: number;
}

/**
 * The enterprise IdP, where the RFC 8693 token exchange happens (leg 1).
 *
 * @example
 * ```ts
 * const idp: IdpOptions = { issuer: 'https://acme.okta.com', clientId: 'desk-agent', clientSecret: process.env.IDP_SECRET };
 * ```
 */
export interface IdpOptions extends ClientCredentials {
  /** The IdP's issuer; its token endpoint is discovered (RFC 8414 / OpenID Discovery) and cached. Give this or `tokenEndpoint`, not both. */
  issuer?: string | undefined;
  /**
   * The IdP's token endpoint; skips discovery. Give this or `issuer`, not both. A `private_key_jwt`
   * assertion for the IdP then has this URL as its audience (RFC 7523 §3).
   */
  tokenEndpoint?: string | undefined;
  /** This app's client id at the IdP: the ID token's `aud` (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.3). */
  clientId: string;
  /** Default: `private_key_jwt` with a key, `client_secret_post` with a secret, else `none` (or what IdP metadata allows). */
  authMethod?: ClientAuthMethod | undefined;
}

/**
 * This app's registration at the MCP server's authorization server (the RFC 7523 leg).
 *
 * @example
 * ```ts
 * const client: ClientOptions = { clientId: 'wiki-app', clientSecret: process.env.MCP_SECRET, issuer: 'https://login.tools.example/tenant-7' };
 * ```
 */
export interface ClientOptions extends ClientCredentials {
  /** The client id at the authorization server (the ID-JAG's `client_id` claim). */
  clientId: string;
  /** Default: chosen from the server's `token_endpoint_auth_methods_supported` (a key first, then Basic). */
  authMethod?: ClientAuthMethod | undefined;
  /**
   * Pins these credentials to this authorization-server issuer. Without it they bind, for the life of
   * the wrapper, to the first authorization server they are used with (this package's rule for the
   * MCP authorization spec's one-issuer binding, 2026-07-28 "Authorization Server Binding"). Required
   * in a list of registrations.
   * @see https://modelcontextprotocol.io/specification/2026-07-28/basic/authorization
   */
  issuer?: string | undefined;
  /**
   * For an authorization server that registered this client once per enterprise: the issuer of the
   * IdP (one of `idp`) whose users this registration serves. Without it, it serves every IdP's users.
   */
  idp?: string | undefined;
}

/**
 * Options of {@link withCrossAppAccess} and {@link crossAppAccess}, validated once when the wrapper
 * is made. Unknown keys are rejected.
 *
 * @example
 * ```ts
 * const options: CrossAppAccessOptions = {
 *   idToken: () => sso.getIdToken(),
 *   idp: { issuer: 'https://acme.okta.com', clientId: 'desk-agent' },
 *   client: { clientId: 'wiki-app', clientSecret: process.env.MCP_SECRET },
 *   resource: 'https://mcp.tools.example/team-a/mcp',
 *   onEvent: (event) => log.debug(event),
 * };
 * ```
 */
export interface CrossAppAccessOptions {
  /**
   * The signed-in user's ID token, or a function that returns a (fresh) one. With `subjectTokenType`,
   * that kind of token instead. Required with `idp`; not with `assertion`, which replaces both.
   */
  idToken?: string | IdTokenSource | undefined;
  /**
   * Workload identity (SEP-1933), in place of `idToken` and `idp`: the workload's platform-issued
   * JWT, sent as the RFC 7523 jwt-bearer assertion straight to the MCP server's authorization server
   * (no IdP leg). Give either `assertion`, or `idToken` and `idp`.
   *
   * @example
   * ```ts
   * const options: CrossAppAccessOptions = {
   *   assertion: ({ audience }) => platform.identityToken({ audience }),
   *   client: { clientId: 'billing-agent' },
   *   resource: 'https://mcp.tools.example/mcp',
   * };
   * ```
   */
  assertion?: WorkloadAssertionSource | undefined;
  /**
   * What `idToken` supplies: an OpenID `id_token` (default), a base64url SAML 2 assertion (`saml2`,
   * first exchanged at the IdP for an IdP refresh token), or an IdP `refresh_token` (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3, §4.5).
   */
  subjectTokenType?: SubjectTokenType | undefined;
  /**
   * The enterprise IdP that exchanges the ID token for an ID-JAG, and this client's registration
   * there; or a list of them (one per enterprise), each with its `issuer`: each user's ID token then
   * goes to the IdP whose `issuer` equals its `iss` claim (read, not verified: the IdP verifies it),
   * and an ID token from an IdP not listed is refused (`idp_not_allowed`) before it is sent anywhere.
   * A list takes ID tokens only (`subjectTokenType` `'id_token'`): other subject tokens do not name
   * their issuer.
   *
   * @example
   * ```ts
   * const idp: CrossAppAccessEngineOptions['idp'] = [
   *   { issuer: 'https://acme.okta.com', clientId: 'gw', clientSecret: process.env.ACME_IDP_SECRET },
   *   { issuer: 'https://login.globex.example', clientId: 'gw-9', privateKey: globexKey },
   * ];
   * ```
   *
   * Required with `idToken` (or, in a {@link CrossAppAccess} engine, unless `assertion` is given).
   */
  idp?: IdpOptions | readonly IdpOptions[] | undefined;
  /**
   * This client's registration at the MCP server's authorization server (the JWT-bearer grant); or a
   * list of them, one per authorization server, each naming its `issuer` (and, for a server that
   * registered the client once per enterprise, its `idp`). A resource is served with the registration
   * of the authorization server its RFC 9728 metadata names; one whose authorization server holds no
   * registration fails closed with `issuer_not_allowed` before anything is sent.
   *
   * @example
   * ```ts
   * const client: CrossAppAccessEngineOptions['client'] = [
   *   { issuer: 'https://auth.notion.example', clientId: 'gw-notion', clientSecret: process.env.NOTION_SECRET },
   *   { issuer: 'https://auth.linear.example', clientId: 'gw-linear', privateKey: linearKey },
   * ];
   * ```
   */
  client: ClientOptions | readonly ClientOptions[];
  /** Scopes to request (array or space-separated string, never comma-separated). Default: the server's challenge, then its metadata. */
  scope?: string | readonly string[] | undefined;
  /**
   * The MCP server's resource identifier (e.g. `https://mcp.example.com/mcp`), or a list of them.
   * Skips the first 401 round trip, and limits where tokens may go to URLs inside one of them; a
   * request elsewhere passes through untouched.
   */
  resource?: string | readonly string[] | undefined;
  /**
   * Timeout in milliseconds (at least 100) for each metadata and token request, body included, and
   * for `idToken`. Default 10000.
   */
  timeout?: number | undefined;
  /**
   * Retries of metadata and token requests after a network error, a timeout, a 5xx or a 429
   * (honouring `Retry-After`); OAuth 4xx answers are never retried. `false` disables retries.
   * Default `{ retries: 2, baseDelay: 250, maxDelay: 30000 }` (milliseconds).
   */
  retry?:
    | false
    | {
        /** How many times a failed request is tried again (not counting the first attempt). */
        retries?: number | undefined;
        /** Milliseconds of the first back-off; it doubles with each retry, with full jitter. */
        baseDelay?: number | undefined;
        /** The longest wait in milliseconds; a longer one (such as a server's `Retry-After`) ends the retries. */
        maxDelay?: number | undefined;
      }
    | undefined;
  /**
   * Renew a token this many milliseconds (0, or at least 1000) before it expires, in the background
   * while it is still served. Default: max(60 s, 10 % of its lifetime), never more than half of it.
   */
  renewBefore?: number | undefined;
  /** Lifetime in milliseconds (at least 60000) of a token whose response had no `expires_in` (nor a JWT `exp`). Default 3600000. */
  defaultTokenLifetime?: number | undefined;
  /** Step-ups after a 403 `insufficient_scope` challenge, per request: 0, 1 or 2 (3 authorization attempts in all). Default 2. */
  maxStepUps?: number | undefined;
  /** A stream body (or a `Request` body) is buffered up to this many bytes so it can be replayed. Default 1 MiB. */
  maxReplayBodyBytes?: number | undefined;
  /** Most access tokens kept (least recently used are dropped). Default 1000. */
  maxCachedTokens?: number | undefined;
  /** The clock, in epoch milliseconds (for tests and simulations). Default `Date.now`. */
  now?: (() => number) | undefined;
  /** Receives redacted events: discovery, exchange, grant, token issued, invalidated, failure. */
  onEvent?: ((event: CrossAppAccessEvent) => void) | undefined;
  /**
   * Decode the ID-JAG (without verifying it) and check its `aud` and `client_id` before it is sent
   * to the authorization server, to surface configuration mistakes early; the AS verifies it. Default true.
   */
  checkIdJag?: boolean | undefined;
  /**
   * DPoP (RFC 9449): proof-of-possession for the access tokens (`false` or absent: Bearer). `true` makes an ES256 key pair per
   * engine (WebCrypto, non-extractable); `{ privateKey }` uses a private JWK or PKCS#8 PEM (ES256,
   * ES384, RS256, PS256 or EdDSA), which every process of a fleet sharing a token store must share.
   * The jwt-bearer request carries a proof; a `DPoP` token is sent as `Authorization: DPoP` with a
   * new proof on every request. A bad key is a `ConfigurationError` when the options are made, or
   * for a PEM whose content cannot be imported, at the first request. See docs/dpop.md.
   *
   * @example
   * ```ts
   * withCrossAppAccess(fetch, { ...options, dpop: { privateKey: process.env.DPOP_KEY_PEM! } });
   * ```
   */
  dpop?: DpopOption | false | undefined;
  /**
   * The fetch used for every metadata and token request (IdP, authorization server, protected-resource
   * metadata). Default: the fetch this wrapper wraps (`next`). Middlewares between this wrapper and the
   * network see client credentials, ID tokens and ID-JAGs on token requests unless `oauthFetch`
   * bypasses them: give it a fetch that does not log request headers or bodies.
   *
   * @example
   * ```ts
   * // Logging sees MCP traffic only; token and metadata requests go straight out.
   * const authedFetch = applyMiddlewares(withLogging(), crossAppAccess({ ...options, oauthFetch: fetch }))(fetch);
   * ```
   */
  oauthFetch?: CompatibleFetch | undefined;
}

/**
 * Options of {@link CrossAppAccess}: those of {@link withCrossAppAccess} except `idToken` (each
 * user's session brings its own), plus `store`. With `assertion` (workload identity) in place of
 * `idp`, sessions bring no `idToken`: the engine's `assertion` is asked, told the user key.
 *
 * @example
 * ```ts
 * const xaa = new CrossAppAccess({ idp, client, resource: 'https://mcp.example.com/mcp', store: memoryTokenStore({ max: 50_000 }) });
 * ```
 */
export interface CrossAppAccessEngineOptions extends Omit<CrossAppAccessOptions, 'idToken' | 'oauthFetch'> {
  /** Where access tokens live. Default: in memory, `maxCachedTokens` at most. */
  store?: TokenStore | undefined;
  /** The fetch for every metadata and token request. Default: the global `fetch`. */
  oauthFetch?: CompatibleFetch | undefined;
}

/** Engine options after validation: immutable, normalised, with defaults applied. */
export interface ResolvedOptions {
  readonly subjectTokenType: SubjectTokenType;
  /** At least one; none with {@link assertion}. */
  readonly idps: readonly ResolvedIdp[];
  /** Workload identity: the platform JWT source that replaces the IdP leg; undefined in the user flow. */
  readonly assertion: WorkloadAssertionSource | undefined;
  /** At least one. */
  readonly clients: readonly Readonly<ClientOptions>[];
  readonly scopes: readonly string[] | undefined;
  /** The configured resources; empty when they are learned from 401s. */
  readonly resources: readonly ConfiguredResource[];
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly renewBeforeMs: number | undefined;
  readonly defaultTokenLifetimeMs: number;
  readonly maxStepUps: number;
  readonly maxReplayBodyBytes: number;
  readonly maxCachedTokens: number;
  readonly now: () => number;
  readonly onEvent: ((event: CrossAppAccessEvent) => void) | undefined;
  readonly checkIdJag: boolean;
  /** DPoP, when configured (RFC 9449). */
  readonly dpop: DpopOption | undefined;
  /** The fetch for metadata and token requests, when it is not the wrapped one. */
  readonly oauthFetch: FetchLike | undefined;
  /** Where tokens live; undefined means a memory store of `maxCachedTokens`. */
  readonly store: TokenStore | undefined;
}

/** An IdP after validation, with the partition of the cache its users' tokens live in. */
export interface ResolvedIdp extends Readonly<IdpOptions> {
  /** Its issuer (or token endpoint) and this client's id there: part of every cache key of its users. */
  readonly partition: string;
}

/** A configured resource: its identifier verbatim, parsed, and the URLs it covers. */
export interface ConfiguredResource {
  readonly resource: string;
  readonly url: URL;
  readonly boundary: ResourceBoundary;
}

/** A one-user wrapper's options after validation: the engine's, and its ID-token source. */
export interface ResolvedWrapperOptions extends ResolvedOptions {
  readonly idToken: IdTokenSource;
  /** True when `idToken` was a string: asking again cannot give a new one. */
  readonly idTokenIsStatic: boolean;
}
