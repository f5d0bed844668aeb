import { z } from 'zod';
import { privateKeyProblem, type PrivateKeyInput } from './oauth/client-assertion.js';
import type { ClientAuthMethod, ClientCredentials } from './oauth/client-auth.js';
import type { SubjectTokenType } from './oauth/grants.js';
import { ConfigurationError } from './errors.js';
import { NO_RETRY, type RetryPolicy } from './oauth/retry.js';
import type { CrossAppAccessEvent } from './events.js';
import type { CompatibleFetch, FetchLike } from './fetch-types.js';
import type { TokenStore } from './stores/token-store.js';
import { insecureUrlReason, parseUrl, resourceScope, type ResourceScope } from './url-rules.js';

/**
 * Why the package is asking for an ID token: `'initial'`, `'renewal'`, `'rejected'` (the IdP refused
 * the last one: refresh it), or `'reauthenticate'` (the IdP wants a more recent sign-in than the last
 * one shows, within `maxAge` seconds when it said: the user must authenticate again, ID-JAG draft -04 §4.3).
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
 * What an {@link IdTokenSource} is told: why a token is needed, a signal that aborts after `timeout`,
 * the user key it is for (absent for a one-user wrapper), and `maxAge` with `'reauthenticate'`.
 *
 * @example
 * ```ts
 * const idToken = ({ user, reason }: IdTokenContext) => sessions.idTokenFor(user!, { forceRefresh: reason !== 'initial' });
 * ```
 */
export interface IdTokenContext {
  reason: IdTokenReason;
  signal: AbortSignal;
  /** The application's user key the token is for ({@link CrossAppAccess}); absent for a one-user wrapper. */
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
  /** This app's client id at the IdP: the ID token's `aud` (ID-JAG draft §4.3.3). */
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
   * the wrapper, to the first authorization server they are used with (MCP authorization spec,
   * "Authorization Server Binding").
   */
  issuer?: string | undefined;
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
  /** The signed-in user's ID token, or a function that returns a (fresh) one. With `subjectTokenType`, that kind of token instead. */
  idToken: string | IdTokenSource;
  /**
   * What `idToken` supplies: an OpenID `id_token` (default), a base64url SAML 2 assertion (`saml2`,
   * first exchanged at the IdP for an IdP refresh token), or an IdP `refresh_token` (ID-JAG draft §4.3, §4.5).
   */
  subjectTokenType?: SubjectTokenType | undefined;
  idp: IdpOptions;
  client: ClientOptions;
  /** Scopes to request (array or space-separated string, never comma-separated). Default: the server's challenge, then its metadata. */
  scope?: string | readonly string[] | undefined;
  /**
   * The MCP server's resource identifier (e.g. `https://mcp.example.com/mcp`). Skips the first 401
   * round trip, and limits where tokens may go to URLs inside it.
   */
  resource?: string | undefined;
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
  retry?: false | { retries?: number | undefined; baseDelay?: number | undefined; maxDelay?: number | undefined } | undefined;
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
 * user's session brings its own), plus `store`.
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
  readonly idp: Readonly<IdpOptions>;
  readonly client: Readonly<ClientOptions>;
  readonly scopes: readonly string[] | undefined;
  readonly resource: string | undefined;
  readonly resourceUrl: URL | undefined;
  readonly resourceScope: ResourceScope | undefined;
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
  /** The fetch for metadata and token requests, when it is not the wrapped one. */
  readonly oauthFetch: FetchLike | undefined;
  /** Where tokens live; undefined means a memory store of `maxCachedTokens`. */
  readonly store: TokenStore | undefined;
}

/** A one-user wrapper's options after validation: the engine's, and its ID-token source. */
export interface ResolvedWrapperOptions extends ResolvedOptions {
  readonly idToken: IdTokenSource;
  /** True when `idToken` was a string: asking again cannot give a new one. */
  readonly idTokenIsStatic: boolean;
}

const secureUrl = z.string().superRefine((value, ctx) => {
  const url = parseUrl(value);
  if (!url) {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute URL' });
    return;
  }
  const reason = insecureUrlReason(url);
  if (reason) ctx.addIssue({ code: 'custom', message: reason });
  if (url.hash !== '') ctx.addIssue({ code: 'custom', message: 'must not contain a fragment' });
});

// A lone UTF-16 surrogate cannot be form-encoded (RFC 6749 App. B needs UTF-8): refuse it up front.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const wellFormed = (s: string) => !LONE_SURROGATE.test(s);
const nonEmpty = z.string().min(1, 'expected a non-empty string').refine(wellFormed, 'contains a lone UTF-16 surrogate');
// An empty secret is never sent (strict servers answer invalid_client): use authMethod 'none' instead.
const secret = z.string().min(1, "must not be empty (omit it, or use authMethod 'none')").refine(wellFormed, 'contains a lone UTF-16 surrogate');
const authMethod = z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
const privateKey = z.custom<PrivateKeyInput>((v) => v !== undefined && v !== null).superRefine((value, ctx) => {
  const problem = privateKeyProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const signingAlg = z.enum(['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']);
const scopeToken = z
  .string()
  // RFC 6749 §3.3 allows a comma in a scope token, but "a,b" is surely a list written the wrong way.
  .refine((s) => !s.includes(','), 'must be space-separated, not comma-separated (e.g. "files:read files:write" or ["files:read", "files:write"])')
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected scope tokens (RFC 6749 §3.3)');

/**
 * A duration in milliseconds with a floor below which the value surely meant seconds
 * (`timeout: 10`); the message says so.
 */
function milliseconds(floor: number, max: number, { allowZero = false }: { allowZero?: boolean } = {}) {
  return z
    .number()
    .int()
    .min(allowZero ? 0 : 1)
    .max(max)
    .refine((ms) => (allowZero && ms === 0) || ms >= floor, {
      error: (issue) =>
        `must be ${allowZero ? '0 or ' : ''}at least ${floor}: it is in milliseconds (${String(issue.input)} means ${String(issue.input)} ms; for ${String(issue.input)} seconds write ${Number(issue.input) * 1000})`,
    });
}

/** The fields `idp` and `client` share ({@link ClientCredentials}). */
const credentialFields = {
  clientId: nonEmpty,
  clientSecret: secret.optional(),
  authMethod: authMethod.optional(),
  privateKey: privateKey.optional(),
  keyId: nonEmpty.optional(),
  signingAlg: signingAlg.optional(),
};

type Credentials = { clientSecret?: string | undefined; authMethod?: string | undefined; privateKey?: unknown };

function credentialsRule(value: Credentials, ctx: z.RefinementCtx): void {
  const method = value.authMethod;
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && value.clientSecret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `is required by authMethod '${method}'` });
  }
  if (method === 'private_key_jwt' && value.privateKey === undefined) {
    ctx.addIssue({ code: 'custom', path: ['privateKey'], message: "is required by authMethod 'private_key_jwt'" });
  }
  if (method === 'none' && (value.clientSecret !== undefined || value.privateKey !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['authMethod'], message: "is 'none' but a clientSecret or privateKey is set: remove one of them" });
  }
}

// Strict objects: a misspelt option (say `clientSecrett`) is an error, not a silently public client.
const idpSchema = z.strictObject({
  issuer: secureUrl.optional(),
  tokenEndpoint: secureUrl.optional(),
  ...credentialFields,
});
const clientSchema = z.strictObject({
  ...credentialFields,
  issuer: secureUrl.optional(),
});
const retrySchema = z.strictObject({
  retries: z.number().int().min(0).max(10).optional(),
  baseDelay: z.number().int().min(0).max(60_000).optional(),
  maxDelay: z.number().int().min(0).max(600_000).optional(),
});

const schema = z.strictObject({
  idToken: z.union([nonEmpty, z.custom<IdTokenSource>((v) => typeof v === 'function')], {
    error: 'expected a non-empty string or a function',
  }),
  subjectTokenType: z.enum(['id_token', 'saml2', 'refresh_token']).optional(),
  idp: idpSchema.superRefine((value, ctx) => {
    if (value.issuer === undefined && value.tokenEndpoint === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs issuer (discovered) or tokenEndpoint' });
    }
    // Both given: one would silently win. The issuer only matters for discovery (RFC 8414 §3).
    if (value.issuer !== undefined && value.tokenEndpoint !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'has both issuer and tokenEndpoint: keep issuer to discover the token endpoint from the IdP metadata, or tokenEndpoint to skip discovery',
      });
    }
    credentialsRule(value, ctx);
  }),
  client: clientSchema.superRefine(credentialsRule),
  scope: z
    .union([z.string(), z.array(scopeToken)], { error: 'expected a space-separated string or an array of scope tokens' })
    .optional(),
  resource: secureUrl.optional(),
  timeout: milliseconds(100, 600_000).optional(),
  retry: z.union([z.literal(false), retrySchema], { error: 'expected false or { retries, baseDelay, maxDelay }' }).optional(),
  renewBefore: milliseconds(1000, 86_400_000, { allowZero: true }).optional(),
  defaultTokenLifetime: milliseconds(60_000, 86_400_000).optional(),
  // At most 3 authorization attempts per request, counting the first (the MCP conformance suite checks this).
  maxStepUps: z.number().int().min(0).max(2).optional(),
  maxReplayBodyBytes: z.number().int().min(0).max(1024 * 1024 * 1024).optional(),
  maxCachedTokens: z.number().int().positive().max(10_000_000).optional(),
  now: z.custom<() => number>((v) => typeof v === 'function', 'expected a function returning epoch milliseconds').optional(),
  onEvent: z.custom<(event: CrossAppAccessEvent) => void>((v) => typeof v === 'function', 'expected a function').optional(),
  checkIdJag: z.boolean().optional(),
  oauthFetch: z.custom<FetchLike>((v) => typeof v === 'function', 'expected a fetch function').optional(),
});

const STORE_METHODS = ['get', 'set', 'delete', 'deleteUser'] as const;
const tokenStore = z.custom<TokenStore>(
  (v) => typeof v === 'object' && v !== null && STORE_METHODS.every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
  `expected a TokenStore (an object with ${STORE_METHODS.join(', ')})`,
);

// The engine takes no idToken (each user's session brings one) but may take a shared store.
const engineSchema = schema.omit({ idToken: true }).extend({ store: tokenStore.optional() });

/** The keys each object option knows, for "did you mean" (by option path). */
const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': [...Object.keys(schema.shape), 'store'],
  idp: Object.keys(idpSchema.shape),
  client: Object.keys(clientSchema.shape),
  retry: Object.keys(retrySchema.shape),
};

/**
 * Retries, with an overall deadline: every attempt timing out and every wait at its longest
 * (our rule: retries respect a total deadline).
 */
function retryPolicy(retry: false | { retries?: number; baseDelay?: number; maxDelay?: number } | undefined, timeoutMs: number): RetryPolicy {
  if (retry === false) return NO_RETRY;
  const retries = retry?.retries ?? 2;
  const maxDelayMs = retry?.maxDelay ?? 30_000;
  return { retries, baseDelayMs: retry?.baseDelay ?? 250, maxDelayMs, maxElapsedMs: timeoutMs * (retries + 1) + maxDelayMs * retries };
}

/** Splits, de-duplicates and sorts scopes (RFC 6749 §3.3: order does not matter); undefined for none. */
export function normaliseScopes(scope: string | readonly string[] | undefined): string[] | undefined {
  if (scope === undefined) return undefined;
  const list = typeof scope === 'string' ? scope.split(' ') : scope;
  const unique = [...new Set(list.filter((s) => s !== ''))].sort();
  return unique.length > 0 ? unique : undefined;
}

/**
 * Validates a one-user wrapper's options once, when it is made (nothing is validated per request).
 * Throws a {@link ConfigurationError} naming the first bad option.
 */
export function resolveOptions(input: unknown): ResolvedWrapperOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigurationError('options', 'expected an object');
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw configurationError(parsed.error.issues[0], input);
  const idToken = parsed.data.idToken;
  return Object.freeze({
    ...resolved(parsed.data, undefined),
    idToken: typeof idToken === 'string' ? () => idToken : idToken,
    idTokenIsStatic: typeof idToken === 'string',
  });
}

/** Validates an engine's options once (see {@link resolveOptions}); an engine takes no `idToken`. */
export function resolveEngineOptions(input: unknown): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigurationError('options', 'expected an object');
  if ('idToken' in input) {
    throw new ConfigurationError('idToken', 'is not an engine option: give each user\'s idToken to xaa.fetch(fetch, { user, idToken }) or getAccessToken');
  }
  const parsed = engineSchema.safeParse(input);
  if (!parsed.success) throw configurationError(parsed.error.issues[0], input);
  return Object.freeze(resolved(parsed.data, parsed.data.store));
}

function resolved(o: z.infer<typeof engineSchema>, store: TokenStore | undefined): ResolvedOptions {
  if (typeof o.scope === 'string') {
    for (const s of o.scope.split(' ').filter(Boolean)) {
      const token = scopeToken.safeParse(s);
      if (!token.success) throw new ConfigurationError('scope', token.error.issues[0]?.message ?? 'expected scope tokens (RFC 6749 §3.3)');
    }
  }
  return {
    subjectTokenType: o.subjectTokenType ?? 'id_token',
    idp: Object.freeze({ ...o.idp }),
    client: Object.freeze({ ...o.client }),
    scopes: normaliseScopes(o.scope),
    resource: o.resource,
    resourceUrl: o.resource === undefined ? undefined : new URL(o.resource),
    resourceScope: o.resource === undefined ? undefined : resourceScope(new URL(o.resource)),
    timeoutMs: o.timeout ?? 10_000,
    retry: retryPolicy(o.retry, o.timeout ?? 10_000),
    renewBeforeMs: o.renewBefore,
    defaultTokenLifetimeMs: o.defaultTokenLifetime ?? 3_600_000,
    maxStepUps: o.maxStepUps ?? 2,
    maxReplayBodyBytes: o.maxReplayBodyBytes ?? 1024 * 1024,
    maxCachedTokens: o.maxCachedTokens ?? 1000,
    now: o.now ?? (() => Date.now()),
    onEvent: o.onEvent,
    checkIdJag: o.checkIdJag ?? true,
    // Any WHATWG fetch takes the platform's RequestInit at run time, whatever its declarations say.
    oauthFetch: o.oauthFetch as FetchLike | undefined,
    store,
  };
}

/**
 * The first problem as a {@link ConfigurationError} that names the option path: "is required" for a
 * missing option, and an unknown key by its own path, with the known key it most resembles.
 */
function configurationError(issue: z.core.$ZodIssue | undefined, input: object): ConfigurationError {
  if (!issue) return new ConfigurationError('options', 'invalid');
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = String(issue.keys[0]).slice(0, 60);
    const suggestion = closestKey(key, KNOWN_KEYS[path.join('.')] ?? []);
    return new ConfigurationError([...path, key].join('.'), `unknown option${suggestion ? ` (did you mean ${suggestion}?)` : ''}`);
  }
  const option = path.length > 0 ? path.join('.') : 'options';
  const missing = (issue.code === 'invalid_type' || issue.code === 'invalid_union') && valueAt(input, path) === undefined;
  if (missing) {
    const expected = issue.code === 'invalid_type' ? ` (expected ${article(issue.expected)})` : ` (${issue.message})`;
    return new ConfigurationError(option, `is required${expected}`);
  }
  return new ConfigurationError(option, issue.message);
}

function valueAt(input: object, path: readonly string[]): unknown {
  let value: unknown = input;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return value;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The known key closest to a misspelt one (same letters in another case, or at most 2 edits away). */
function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Levenshtein distance, for short option names only. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
