import { DEFAULTS } from './options/defaults.js';
/**
 * Where in the flow a failure happened.
 *
 * @example
 * ```ts
 * if (err instanceof CrossAppAccessError && err.stage === 'token_exchange') alertIdpTeam(err);
 * ```
 */
export type CrossAppAccessStage =
  | 'config'
  | 'id_token'
  | 'assertion'
  | 'discovery'
  | 'token_exchange'
  | 'jwt_bearer'
  | 'request';

/**
 * Stable machine-readable failure codes. Branch on these, never on messages.
 *
 * - `invalid_option`: an option is missing or malformed (stage `config`).
 * - `insecure_url`: an `http:` URL on a non-loopback host, or credentials in a URL (MCP authorization spec,
 *   "Communication Security"; RFC 6749 §2.3.1).
 * - `metadata_not_found`: no protected-resource or authorization-server metadata at any well-known URL.
 * - `invalid_metadata`: a metadata document lacks a required member or has a wrong type.
 * - `issuer_mismatch`: metadata `issuer` is not identical to the issuer it was fetched for (RFC 8414 §3.3).
 * - `resource_mismatch`: protected-resource metadata names another resource (RFC 9728 §3.3).
 * - `issuer_not_allowed`: the resource names an authorization server where this client holds no registration
 *   (for the user's IdP, when registrations name their IdP); nothing was sent.
 * - `idp_not_allowed`: with a list of IdPs, an ID token whose `iss` is none of them (or that names no
 *   issuer); it was not sent anywhere.
 * - `unsupported_profile`: the authorization server does not support the ID-JAG / jwt-bearer grant.
 * - `unsupported_auth_method`: the configured client authentication method is not offered by the server.
 * - `insufficient_scope`: a step-up's challenged scope was not granted by the IdP or the authorization server.
 * - `oauth_error`: the server answered with an RFC 6749 §5.2 error (see `error`, `errorDescription`).
 * - `login_required`: the ID token is expired or the IdP rejected it: send the user back to SSO.
 * - `insufficient_user_authentication`: the IdP wants a more recent (or stronger) sign-in than the ID
 *   token shows, even after `idToken` was asked once with reason `'reauthenticate'`; `maxAge` says how
 *   recent, when the IdP said (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3). Have the user authenticate again.
 * - `http_error`: a non-2xx answer without an OAuth error body.
 * - `invalid_response`: a body that is not the JSON the protocol requires (HTML, missing fields, …).
 * - `invalid_token_type`: `issued_token_type` / `token_type` is not the one the protocol requires.
 * - `dpop_unsupported`: a DPoP-bound token was asked for by a path that sends tokens as Bearer only (the MCP SDK `authProvider`): it is not given.
 * - `dpop_key_mismatch`: a stored DPoP-bound token is bound to another key than this engine's `dpop` key, or the engine has none (it is never sent as Bearer).
 * - `id_jag_mismatch`: the ID-JAG's `aud` or `client_id` does not match this client (the `checkIdJag` option).
 * - `id_token_unavailable`: the `idToken` source threw or returned something that is not a token.
 * - `assertion_unavailable`: workload identity: the `assertion` source threw, returned something that
 *   is not a token, or returned an expired JWT twice (stage `assertion`); nothing was sent.
 * - `assertion_mismatch`: workload identity: the platform JWT's `aud` does not name the authorization
 *   server's issuer; it was not sent (that server could replay it where it is valid).
 * - `assertion_rejected`: workload identity: the authorization server refused the platform JWT
 *   (`invalid_grant`: expired, another audience, an issuer or subject it does not trust). Not retried.
 * - `invalid_scope`: workload identity: the authorization server refused the scope asked for
 *   (`invalid_scope`). Not retried.
 * - `unauthorized_client`: workload identity: this client may not use the jwt-bearer grant with this
 *   workload (`unauthorized_client`). Not retried, and no other grant is tried.
 * - `unknown_user`: a request to a protected resource, or a token, for which no user could be resolved (fails closed).
 * - `user_mismatch`: an ID token named another user than the first one seen for that user key (refused until forgotten).
 * - `unexpected_redirect`: a token or metadata endpoint answered 3xx (never followed, cf. RFC 9700 §4.12).
 * - `response_too_large`: a token or metadata body exceeded its size cap.
 * - `timeout`: a token or metadata request took longer than the configured timeout.
 * - `network_error`: a token or metadata request failed before any answer.
 *
 * @example
 * ```ts
 * const code: CrossAppAccessErrorCode = err.code;
 * if (code === 'login_required') redirectToSso();
 * ```
 */
export type CrossAppAccessErrorCode =
  | 'invalid_option'
  | 'insecure_url'
  | 'metadata_not_found'
  | 'invalid_metadata'
  | 'issuer_mismatch'
  | 'resource_mismatch'
  | 'issuer_not_allowed'
  | 'idp_not_allowed'
  | 'unsupported_profile'
  | 'unsupported_auth_method'
  | 'insufficient_scope'
  | 'oauth_error'
  | 'login_required'
  | 'insufficient_user_authentication'
  | 'http_error'
  | 'invalid_response'
  | 'invalid_token_type'
  | 'dpop_key_mismatch'
  | 'dpop_unsupported'
  | 'id_jag_mismatch'
  | 'id_token_unavailable'
  | 'assertion_unavailable'
  | 'assertion_mismatch'
  | 'assertion_rejected'
  | 'invalid_scope'
  | 'unauthorized_client'
  | 'unknown_user'
  | 'user_mismatch'
  | 'unexpected_redirect'
  | 'response_too_large'
  | 'timeout'
  | 'network_error';

/**
 * Details carried by every {@link CrossAppAccessError}.
 *
 * @example
 * ```ts
 * const { code, stage, status, error } = err as CrossAppAccessErrorDetails;
 * ```
 */
export interface CrossAppAccessErrorDetails {
  /** What went wrong: see {@link CrossAppAccessErrorCode}. */
  code: CrossAppAccessErrorCode;
  /** Where in the flow it happened. */
  stage: CrossAppAccessStage;
  /** HTTP status, when a server answered. */
  status?: number;
  /** The OAuth `error` code from an RFC 6749 §5.2 error body. */
  error?: string;
  /** The OAuth `error_description` (untrusted server text, length-capped). */
  errorDescription?: string;
  /** The OAuth `error_uri` (untrusted server text). */
  errorUri?: string;
  /** Seconds the server asked us to wait (`Retry-After`, RFC 9110 §10.2.3), when it did. */
  retryAfter?: number;
  /** The OAuth error body's `max_age`: the most seconds since the user authenticated that the IdP accepts (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3, RFC 9470 §3). */
  maxAge?: number;
  /** The underlying error (a network or parse failure), set as the error's `cause`. */
  cause?: unknown;
}

// A registry-wide symbol holding the class kinds of an error, so that `instanceof` works for every
// class of the family when the ESM and CJS builds are both loaded (two copies of each class).
const brand = Symbol.for('cross-app-access.error-kinds');

function kindsOf(target: Function): string[] {
  const kinds: string[] = [];
  for (let c: unknown = target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
    const kind = (c as { kind?: unknown }).kind;
    if (typeof kind === 'string' && !kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

/**
 * Every failure this package causes or detects. Branch on `code` and `stage`; messages are for
 * people and never contain a token, an ID token, an assertion or a secret (MCP Enterprise-Managed Authorization
 * §7.4.2, §7.5.4).
 *
 * @example
 * ```ts
 * try {
 *   await authedFetch('https://mcp.example.com/mcp', { method: 'POST', body });
 * } catch (err) {
 *   if (err instanceof CrossAppAccessError && err.code === 'login_required') redirectToSso();
 *   else throw err;
 * }
 * ```
 */
export class CrossAppAccessError extends Error {
  /** The brand `instanceof` checks; each subclass has its own. */
  static readonly kind: string = 'CrossAppAccessError';
  /** The class name: `'CrossAppAccessError'`, or the subclass's. */
  override readonly name: string = 'CrossAppAccessError';
  /** What went wrong, stable across versions: branch on this (see {@link CrossAppAccessErrorCode}). */
  readonly code: CrossAppAccessErrorCode;
  /** Where in the flow it happened. */
  readonly stage: CrossAppAccessStage;
  /** HTTP status, when a server answered. */
  readonly status: number | undefined;
  /** The OAuth `error` code from an RFC 6749 §5.2 error body, when there was one. */
  readonly error: string | undefined;
  /** The OAuth `error_description` (untrusted server text, length-capped). */
  readonly errorDescription: string | undefined;
  /** The OAuth `error_uri` (untrusted server text). */
  readonly errorUri: string | undefined;
  /** Seconds the server asked to wait before trying again (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
  /**
   * With `insufficient_user_authentication`: the most seconds since the user's authentication that
   * the IdP accepts (its `max_age`), when it said.
   *
   * @example
   * ```ts
   * if (err.code === 'insufficient_user_authentication') await sso.signIn({ maxAge: err.maxAge });
   * ```
   */
  readonly maxAge: number | undefined;

  constructor(message: string, details: CrossAppAccessErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.stage = details.stage;
    this.status = details.status;
    this.error = details.error;
    this.errorDescription = details.errorDescription;
    this.errorUri = details.errorUri;
    this.retryAfter = details.retryAfter;
    this.maxAge = details.maxAge;
    Object.defineProperty(this, brand, { value: kindsOf(new.target) });
  }

  /**
   * `instanceof` by brand rather than by prototype, so it holds when both the ESM and the CJS build
   * are loaded (two copies of each class).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const kinds = (value as Record<symbol, unknown>)[brand];
    const kind = (this as { kind?: unknown }).kind;
    return Array.isArray(kinds) && typeof kind === 'string' && kinds.includes(kind);
  }

  /** A plain object for logs: every field, no stack, no cause. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      code: this.code,
      stage: this.stage,
      status: this.status,
      error: this.error,
      errorDescription: this.errorDescription,
      errorUri: this.errorUri,
      retryAfter: this.retryAfter,
      maxAge: this.maxAge,
    };
  }
}

/**
 * An option or a call argument is missing or malformed; `option` names it, `stage` is always `'config'`.
 * Thrown synchronously when the wrapper, engine or store is made (the options); and at a call, before
 * anything is sent, for what only the call supplies: a missing or too long `user` key, an `idp` not
 * among the engine's, a missing `idToken`. A private key that cannot sign with its algorithm is
 * found at first use (keys are imported lazily), before the request it would sign.
 *
 * @example
 * ```ts
 * try { withCrossAppAccess(fetch, { idToken: '', idp, client }); }
 * catch (err) { if (err instanceof ConfigurationError) console.error(err.message); } // "idToken: …"
 * ```
 */
export class ConfigurationError extends CrossAppAccessError {
  static override readonly kind: string = 'ConfigurationError';
  /** `'ConfigurationError'`. */
  override readonly name: string = 'ConfigurationError';
  /** The option path, e.g. `idp.tokenEndpoint`. */
  readonly option: string;

  constructor(option: string, problem: string) {
    super(`Invalid cross-app-access option ${option}: ${problem}`, { code: 'invalid_option', stage: 'config' });
    this.option = option;
  }
}

/**
 * An authorization server or IdP answered with an RFC 6749 §5.2 error body
 * (`code` is `'oauth_error'`, or `'login_required'` when the IdP rejected the ID token).
 *
 * @example
 * ```ts
 * if (err instanceof OAuthResponseError && err.error === 'invalid_target') showPolicyDenied();
 * ```
 */
export class OAuthResponseError extends CrossAppAccessError {
  static override readonly kind: string = 'OAuthResponseError';
  /** `'OAuthResponseError'`. */
  override readonly name: string = 'OAuthResponseError';
}

/**
 * Shortens untrusted server text before it goes into an error (RFC 6749 §5.2 text is untrusted). Any secret we sent in
 * that request is cut out first, so a server that echoes it cannot put it in logs.
 */
export function untrustedText(value: unknown, max = 300, secrets: readonly string[] = []): string | undefined {
  if (typeof value !== 'string') return undefined;
  let text = value;
  // Longest first, so that no part of a longer form survives the redaction of a shorter one.
  const longestFirst = [...secrets].sort((a, b) => b.length - a.length);
  for (const secret of longestFirst) if (secret.length >= 4) text = text.split(secret).join('[redacted]');
  // Strip control characters so a hostile description cannot forge log lines.
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

// How deep a chain of `cause`s is followed: deep enough for any wrapper, never forever on a cycle.
const MAX_CAUSE_DEPTH = DEFAULTS.maxCauseDepth;

/**
 * The {@link CrossAppAccessError} behind `error`: `error` itself, or the first one in its chain of
 * `cause`s; undefined when there is none. undici's `fetch` (Node's global `fetch` too) rejects with
 * `TypeError: fetch failed` and puts the dispatcher's error in `cause`, so a failure of the undici
 * interceptor reaches a `fetch` caller wrapped, where `instanceof CrossAppAccessError` misses it.
 *
 * @example
 * ```ts
 * try {
 *   await fetch('https://mcp.example.com/mcp', init); // through crossAppAccessInterceptor
 * } catch (err) {
 *   if (crossAppAccessErrorOf(err)?.code === 'login_required') return redirectToSso();
 *   throw err;
 * }
 * ```
 */
export function crossAppAccessErrorOf(error: unknown): CrossAppAccessError | undefined {
  let current = error;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof CrossAppAccessError) return current;
    try {
      current = (current as { cause?: unknown }).cause;
    } catch {
      return undefined; // a throwing `cause` getter: nothing to look through
    }
  }
  return undefined;
}

/**
 * Whether `error` is, or wraps in its `cause`s, a {@link CrossAppAccessError} (see
 * {@link crossAppAccessErrorOf}: `fetch` through the undici interceptor wraps it).
 *
 * @example
 * ```ts
 * const failure = await fetch(url).catch((err: unknown) => err);
 * if (isCrossAppAccessError(failure)) report(crossAppAccessErrorOf(failure)!.code);
 * ```
 */
export function isCrossAppAccessError(error: unknown): boolean {
  return crossAppAccessErrorOf(error) !== undefined;
}

/** A message fragment with its first letter upper-cased, for a sentence that starts with it ("the IdP …" → "The IdP …"). */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const ALREADY_COUNTED = /\(\d+ attempts, [\d.]+ s in all\)\.$/;

/**
 * Adds how often and how long a request was tried to a failure's message, e.g. "… within 10000 ms
 * (3 attempts, 30.5 s in all)." The error itself (class, code, stage, status, cause) is kept.
 */
export function withAttempts(error: unknown, attempts: number, elapsedMs: number): unknown {
  // An inner retry loop (a metadata GET) may have said it already.
  if (!(error instanceof CrossAppAccessError) || ALREADY_COUNTED.test(error.message)) return error;
  const tried = `(${attempts} attempts, ${(elapsedMs / 1000).toFixed(1)} s in all)`;
  const message = error.message.endsWith('.') ? `${error.message.slice(0, -1)} ${tried}.` : `${error.message} ${tried}.`;
  Object.defineProperty(error, 'message', { value: message, writable: true, configurable: true, enumerable: false });
  return error;
}
