import { z } from 'zod';
import { privateKeyProblem, type PrivateKeyInput } from './client-assertion.js';
import type { ClientAuthMethod, ClientCredentials } from './client-auth.js';
import type { SubjectTokenType } from './grants.js';
import { ConfigurationError } from './errors.js';
import { NO_RETRY, type RetryPolicy } from './retry.js';
import type { CrossAppAccessEvent } from './events.js';
import { insecureUrlReason, parseUrl, resourceScope, type ResourceScope } from './url-rules.js';

/**
 * Why the package is asking for an ID token: `'initial'`, `'renewal'`, `'rejected'` (the IdP refused
 * the last one: refresh it), or `'reauthenticate'` (the IdP wants a more recent sign-in than the last
 * one shows, within `maxAge` seconds when it said: the user must authenticate again, ID-JAG -04 §4.3).
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
export type IdTokenSource = (context: { reason: IdTokenReason; signal: AbortSignal; maxAge?: number }) => string | Promise<string>;

/**
 * The enterprise IdP, where the RFC 8693 token exchange happens (leg 1).
 *
 * @example
 * ```ts
 * const idp: IdpOptions = { issuer: 'https://acme.okta.com', clientId: 'desk-agent', clientSecret: process.env.IDP_SECRET };
 * ```
 */
export interface IdpOptions extends ClientCredentials {
  /** The IdP's issuer; its token endpoint is discovered (RFC 8414 / OpenID Discovery) and cached. */
  issuer?: string;
  /** The IdP's token endpoint; skips discovery. Give this or `issuer`. */
  tokenEndpoint?: string;
  /** This app's client id at the IdP: the ID token's `aud` (PROTOCOL TX-1). */
  clientId: string;
  /** Default: `private_key_jwt` with a key, `client_secret_post` with a secret, else `none` (or what IdP metadata allows). */
  authMethod?: ClientAuthMethod;
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
  authMethod?: ClientAuthMethod;
  /**
   * Pins these credentials to this authorization-server issuer. Without it they bind, for the life of
   * the wrapper, to the first authorization server they are used with (PROTOCOL D-10).
   */
  issuer?: string;
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
   * first exchanged at the IdP for an IdP refresh token), or an IdP `refresh_token` (PROTOCOL TX-2, TX-3).
   */
  subjectTokenType?: SubjectTokenType;
  idp: IdpOptions;
  client: ClientOptions;
  /** Scopes to request (array or space-separated string). Default: the server's challenge, then its metadata. */
  scope?: string | readonly string[];
  /**
   * The MCP server's resource identifier (e.g. `https://mcp.example.com/mcp`). Skips the first 401
   * round trip, and limits where tokens may go to URLs inside it.
   */
  resource?: string;
  /** Timeout in milliseconds for each metadata and token request, and for `idToken`. Default 10000. */
  timeout?: number;
  /**
   * Retries of metadata and token requests after a network error, a timeout, a 5xx or a 429
   * (honouring `Retry-After`); OAuth 4xx answers are never retried. `false` disables retries.
   * Default `{ retries: 2, baseDelay: 250, maxDelay: 30000 }` (milliseconds).
   */
  retry?: false | { retries?: number; baseDelay?: number; maxDelay?: number };
  /**
   * Renew a token this many milliseconds before it expires, in the background while it is still
   * served. Default: max(60 s, 10 % of its lifetime), never more than half of it.
   */
  renewBefore?: number;
  /** Lifetime in milliseconds of a token whose response had no `expires_in` (nor a JWT `exp`). Default 3600000. */
  defaultTokenLifetime?: number;
  /** Step-ups after a 403 `insufficient_scope` challenge, per request: 0, 1 or 2 (PROTOCOL E-6). Default 2. */
  maxStepUps?: number;
  /** A stream body (or a `Request` body) is buffered up to this many bytes so it can be replayed. Default 1 MiB. */
  maxReplayBodyBytes?: number;
  /** Most access tokens kept (least recently used are dropped). Default 1000. */
  maxCachedTokens?: number;
  /** The clock, in epoch milliseconds (for tests and simulations). Default `Date.now`. */
  now?: () => number;
  /** Receives redacted events: discovery, exchange, grant, token issued, invalidated, failure. */
  onEvent?: (event: CrossAppAccessEvent) => void;
  /**
   * Decode the ID-JAG (without verifying it) and check its `aud` and `client_id` before it is sent
   * to the authorization server, to surface configuration mistakes early (PROTOCOL V-11). Default true.
   */
  checkIdJag?: boolean;
}

/** Options after validation: immutable, normalised, with defaults applied. */
export interface ResolvedOptions {
  readonly idToken: IdTokenSource;
  /** True when `idToken` was a string: asking again cannot give a new one. */
  readonly idTokenIsStatic: boolean;
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
// An empty secret is never sent (PROTOCOL CA-3): use authMethod 'none' instead.
const secret = z.string().min(1, "must not be empty (omit it, or use authMethod 'none')").refine(wellFormed, 'contains a lone UTF-16 surrogate');
const authMethod = z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
const privateKey = z.custom<PrivateKeyInput>((v) => v !== undefined && v !== null).superRefine((value, ctx) => {
  const problem = privateKeyProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const signingAlg = z.enum(['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']);
const scopeToken = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected scope tokens (RFC 6749 §3.3)');

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
const schema = z.strictObject({
  idToken: z.union([
    nonEmpty,
    z.custom<IdTokenSource>((v) => typeof v === 'function', 'expected a non-empty string or a function'),
  ]),
  subjectTokenType: z.enum(['id_token', 'saml2', 'refresh_token']).optional(),
  idp: z
    .strictObject({
      issuer: secureUrl.optional(),
      tokenEndpoint: secureUrl.optional(),
      ...credentialFields,
    })
    .superRefine((value, ctx) => {
      if (value.issuer === undefined && value.tokenEndpoint === undefined) {
        ctx.addIssue({ code: 'custom', message: 'needs issuer (discovered) or tokenEndpoint' });
      }
      credentialsRule(value, ctx);
    }),
  client: z
    .strictObject({
      ...credentialFields,
      issuer: secureUrl.optional(),
    })
    .superRefine(credentialsRule),
  scope: z.union([z.string(), z.array(scopeToken)]).optional(),
  resource: secureUrl.optional(),
  timeout: z.number().int().positive().max(600_000).optional(),
  retry: z
    .union([
      z.literal(false),
      z.strictObject({
        retries: z.number().int().min(0).max(10).optional(),
        baseDelay: z.number().int().min(0).max(60_000).optional(),
        maxDelay: z.number().int().min(0).max(600_000).optional(),
      }),
    ])
    .optional(),
  renewBefore: z.number().int().min(0).optional(),
  defaultTokenLifetime: z.number().int().positive().max(86_400_000).optional(),
  // At most 3 authorization attempts per request, counting the first (PROTOCOL E-6).
  maxStepUps: z.number().int().min(0).max(2).optional(),
  maxReplayBodyBytes: z.number().int().min(0).max(1024 * 1024 * 1024).optional(),
  maxCachedTokens: z.number().int().positive().max(10_000_000).optional(),
  now: z.custom<() => number>((v) => typeof v === 'function', 'expected a function returning epoch milliseconds').optional(),
  onEvent: z.custom<(event: CrossAppAccessEvent) => void>((v) => typeof v === 'function', 'expected a function').optional(),
  checkIdJag: z.boolean().optional(),
});

/**
 * Retries, with an overall deadline: every attempt timing out and every wait at its longest
 * (PROTOCOL E-8: "respect a total deadline").
 */
function retryPolicy(retry: false | { retries?: number; baseDelay?: number; maxDelay?: number } | undefined, timeoutMs: number): RetryPolicy {
  if (retry === false) return NO_RETRY;
  const retries = retry?.retries ?? 2;
  const maxDelayMs = retry?.maxDelay ?? 30_000;
  return { retries, baseDelayMs: retry?.baseDelay ?? 250, maxDelayMs, maxElapsedMs: timeoutMs * (retries + 1) + maxDelayMs * retries };
}

/** Splits, de-duplicates and sorts scopes (PROTOCOL S-4); undefined for none. */
export function normaliseScopes(scope: string | readonly string[] | undefined): string[] | undefined {
  if (scope === undefined) return undefined;
  const list = typeof scope === 'string' ? scope.split(' ') : scope;
  const unique = [...new Set(list.filter((s) => s !== ''))].sort();
  return unique.length > 0 ? unique : undefined;
}

/**
 * Validates the options once, when the wrapper is made (nothing is validated per request).
 * Throws a {@link ConfigurationError} naming the first bad option.
 */
export function resolveOptions(input: unknown): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigurationError('options', 'expected an object');
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue && issue.path.length > 0 ? issue.path.join('.') : 'options';
    throw new ConfigurationError(path, issue?.message ?? 'invalid');
  }
  const o = parsed.data;
  if (typeof o.scope === 'string') {
    for (const s of o.scope.split(' ').filter(Boolean)) {
      if (!scopeToken.safeParse(s).success) throw new ConfigurationError('scope', 'expected scope tokens (RFC 6749 §3.3)');
    }
  }
  const idToken = o.idToken;
  return Object.freeze({
    idToken: typeof idToken === 'string' ? () => idToken : idToken,
    idTokenIsStatic: typeof idToken === 'string',
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
  });
}
