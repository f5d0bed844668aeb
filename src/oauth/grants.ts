import { z } from 'zod';
import { applyClientAuth, formEncodeCredential, type AssertionContext, type ClientAuthMethod, type ClientCredentials } from './client-auth.js';
import { CrossAppAccessError, capitalize, untrustedText, type CrossAppAccessStage } from '../errors.js';
import type { CrossAppAccessEvent } from '../events.js';
import type { EndpointHolds } from './endpoint-holds.js';
import type { Dpop } from './dpop/dpop.js';
import { MAX_TOKEN_RESPONSE_BYTES, httpErrorFrom, oauthErrorFrom, requestJson, type FetchLike } from './http.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const SAML2_TYPE = 'urn:ietf:params:oauth:token-type:saml2';
export const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token';

/**
 * What the app's subject token is (RFC 8693 §3; draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3, §4.5).
 *
 * @example
 * ```ts
 * withCrossAppAccess(fetch, { ...options, subjectTokenType: 'saml2' satisfies SubjectTokenType, idToken: () => sso.samlAssertionBase64url() });
 * ```
 */
export type SubjectTokenType = 'id_token' | 'saml2' | 'refresh_token';

export const SUBJECT_TOKEN_TYPES: Record<SubjectTokenType, string> = {
  id_token: ID_TOKEN_TYPE,
  saml2: SAML2_TYPE,
  refresh_token: REFRESH_TOKEN_TYPE,
};

/**
 * `expires_in` (RFC 6749 §5.1) as a finite number or, leniently, a numeric string; anything else
 * means absent. Zero and negative values are kept: what they mean depends on the leg.
 */
const expiresIn = z.unknown().transform((value) => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}).optional();
const optionalString = z.unknown().transform((value) => (typeof value === 'string' ? value : undefined)).optional();

const exchangeResponse = z.looseObject({
  access_token: z.string().min(1),
  issued_token_type: z.string(),
  token_type: optionalString,
  expires_in: expiresIn,
  scope: optionalString,
});
const grantResponse = z.looseObject({
  access_token: z.string().min(1),
  token_type: z.string(),
  expires_in: expiresIn,
  scope: optionalString,
});

export interface TokenEndpoint {
  fetch: FetchLike;
  url: string;
  credentials: ClientCredentials;
  method: ClientAuthMethod;
  timeoutMs: number;
  /** For `private_key_jwt`: the assertion's audience, the server's algorithms, the clock, the option path. */
  assertion: AssertionContext;
  /** The engine's endpoints that asked callers to wait (`Retry-After`). */
  holds?: EndpointHolds | undefined;
  /** The engine's DPoP, when the request carries a proof (RFC 9449 §5). */
  dpop?: Dpop | undefined;
}

/**
 * Sends one token request and returns its body, or throws the server's OAuth error (RFC 6749 §5.1, §5.2).
 * Transient failures are retried by the acquisition, which sends a new request (and a new client
 * assertion, with a new jti) each time.
 */
async function tokenRequest(
  endpoint: TokenEndpoint,
  form: URLSearchParams,
  what: string,
  stage: CrossAppAccessStage,
  nonceRetried = false,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  await applyClientAuth(endpoint.method, endpoint.credentials, form, headers, endpoint.assertion);
  const dpop = endpoint.dpop;
  let nonce: string | undefined;
  if (dpop) headers.dpop = await dpop.proof('POST', endpoint.url);
  const secrets = redactable([
    form.get('subject_token'),
    form.get('assertion'),
    form.get('client_secret'),
    form.get('client_assertion'),
    endpoint.credentials.clientSecret,
    headers.authorization,
    headers.authorization?.replace(/^Basic /, ''),
  ]);
  const result = await requestJson({
    fetch: endpoint.fetch,
    url: endpoint.url,
    what,
    stage,
    timeoutMs: endpoint.timeoutMs,
    maxBytes: MAX_TOKEN_RESPONSE_BYTES,
    form,
    headers,
    ...(endpoint.holds ? { holds: endpoint.holds } : {}),
    ...(dpop ? { onHeaders: (answered: Headers) => (nonce = dpop.nonces.note(endpoint.url, answered)) } : {}),
  });
  // An `error` member makes it an error even on a 2xx (RFC 6749 §5.2).
  const oauthError = oauthErrorFrom(result, what, stage, secrets);
  // RFC 9449 §8: the server wants its nonce in the proof; once, with a new proof (and client assertion).
  if (oauthError?.error === 'use_dpop_nonce' && nonce !== undefined && !nonceRetried) return tokenRequest(endpoint, form, what, stage, true);
  if (oauthError) throw oauthError;
  if (!result.ok) throw httpErrorFrom(result, what, stage);
  return { status: result.status, body: result.body };
}

/**
 * Every form in which a secret we sent can come back in a server's text: raw, form-encoded as the
 * body carried it (RFC 6749 App. B, `+` for a space), percent-encoded with `%20` (RFC 3986, and the
 * Basic halves of RFC 6749 §2.3.1), each with upper- or lower-case hex. The Basic header's base64 is
 * passed in as a secret of its own.
 */
export function redactable(secrets: readonly (string | null | undefined)[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret === '') continue;
    const encodings = [secret, new URLSearchParams({ s: secret }).toString().slice(2)];
    try {
      encodings.push(encodeURIComponent(secret), formEncodeCredential(secret));
    } catch {
      // A lone surrogate cannot be percent-encoded, so it was never sent that way either.
    }
    for (const encoded of encodings) {
      forms.add(encoded);
      forms.add(encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
    }
  }
  return [...forms];
}

function invalidResponse(what: string, error: z.ZodError, stage: CrossAppAccessStage, status: number): CrossAppAccessError {
  const issue = error.issues[0];
  return new CrossAppAccessError(
    `${capitalize(what)} answered HTTP ${status} without a valid ${issue?.path.join('.') || 'body'} (${issue?.message ?? 'invalid'}).`,
    { code: 'invalid_response', stage, status },
  );
}

export interface IdJagResponse {
  idJag: string;
  /** The granted scope when the IdP returned one (it may be narrower, RFC 8693 §2.2.1). */
  scope: string | undefined;
  expiresIn: number | undefined;
}

/**
 * Leg 1: RFC 8693 token exchange of the ID token for an ID-JAG at the IdP
 * (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3).
 * `audience` is the authorization server's issuer from its validated metadata, `resource` the PRM
 * `resource` verbatim.
 */
export async function exchangeForIdJag(
  endpoint: TokenEndpoint,
  params: { subjectToken: string; subjectTokenType: string; audience: string; resource: string; scope: string | undefined },
  emit: (event: CrossAppAccessEvent) => void,
): Promise<IdJagResponse> {
  const what = 'the IdP token endpoint';
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    requested_token_type: ID_JAG_TYPE,
    audience: params.audience,
    resource: params.resource,
    subject_token: params.subjectToken,
    subject_token_type: params.subjectTokenType,
  });
  if (params.scope) form.set('scope', params.scope);
  const { status, body } = await tokenRequest(endpoint, form, what, 'token_exchange');
  const parsed = exchangeResponse.safeParse(body);
  if (!parsed.success) throw invalidResponse(what, parsed.error, 'token_exchange', status);
  const response = parsed.data;
  // The ID-JAG type is what makes this safe to send to the AS (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.4).
  if (response.issued_token_type !== ID_JAG_TYPE) {
    throw new CrossAppAccessError(
      `${capitalize(what)} issued a token of type "${untrustedText(response.issued_token_type, 100, redactable([response.access_token, params.subjectToken]))}", not an ID-JAG (${ID_JAG_TYPE}). Check that the IdP supports Identity Assertion Authorization Grants for this client.`,
      { code: 'invalid_token_type', stage: 'token_exchange', status },
    );
  }
  // RFC 8693 §2.2.1 asks for N_A, but IdPs vary: lenient, with a diagnostic.
  if (response.token_type !== undefined && response.token_type.toLowerCase() !== 'n_a') {
    emit({ type: 'diagnostic', message: `The IdP returned token_type "${untrustedText(response.token_type, 50, redactable([response.access_token, params.subjectToken]))}" for the ID-JAG (expected N_A); accepted.`, durationMs: 0 });
  }
  // Any refresh_token is ignored on purpose (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.4). The ID-JAG is redeemed at once, so
  // a lifetime that is not positive is only advice, and ignored.
  const expiresIn = response.expires_in !== undefined && response.expires_in > 0 ? response.expires_in : undefined;
  return { idJag: response.access_token, scope: response.scope, expiresIn };
}

const refreshTokenResponse = z.looseObject({
  issued_token_type: z.string(),
  access_token: optionalString,
  refresh_token: optionalString,
});

/**
 * draft-ietf-oauth-identity-assertion-authz-grant-04 §4.5: a SAML 2 assertion is first exchanged at the IdP for an IdP refresh token
 * (RFC 8693 with `requested_token_type` refresh_token and `scope` `openid offline_access`), which is
 * then the subject of the ID-JAG exchange. The refresh token is used once and never kept.
 */
export async function exchangeSamlForRefreshToken(endpoint: TokenEndpoint, assertion: string): Promise<string> {
  const what = 'the IdP token endpoint (SAML assertion exchange)';
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    requested_token_type: REFRESH_TOKEN_TYPE,
    subject_token: assertion,
    subject_token_type: SAML2_TYPE,
    scope: 'openid offline_access',
  });
  const { status, body } = await tokenRequest(endpoint, form, what, 'token_exchange');
  const parsed = refreshTokenResponse.safeParse(body);
  if (!parsed.success) throw invalidResponse(what, parsed.error, 'token_exchange', status);
  const token = parsed.data.issued_token_type === REFRESH_TOKEN_TYPE ? parsed.data.access_token : undefined;
  const refreshToken = token || parsed.data.refresh_token;
  if (parsed.data.issued_token_type !== REFRESH_TOKEN_TYPE || !refreshToken) {
    throw new CrossAppAccessError(`${capitalize(what)} did not issue a refresh token (${REFRESH_TOKEN_TYPE}) for the SAML assertion.`, {
      code: 'invalid_token_type',
      stage: 'token_exchange',
      status,
    });
  }
  return refreshToken;
}

export interface AccessTokenResponse {
  accessToken: string;
  /** How it is sent: `DPoP` when bound to the engine's DPoP key (RFC 9449 §5), else `Bearer`. */
  tokenType: 'Bearer' | 'DPoP';
  scope: string | undefined;
  expiresIn: number | undefined;
}

/**
 * Leg 2: RFC 7523 jwt-bearer grant of the ID-JAG for an access token at the MCP server's
 * authorization server (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4), with `scope` and `resource` (RFC 8707).
 */
export async function redeemIdJag(
  endpoint: TokenEndpoint,
  params: { assertion: string; resource: string; scope: string | undefined },
): Promise<AccessTokenResponse> {
  const what = 'the authorization server token endpoint';
  const form = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: params.assertion });
  if (params.scope) form.set('scope', params.scope);
  form.set('resource', params.resource);
  const { status, body } = await tokenRequest(endpoint, form, what, 'jwt_bearer');
  const parsed = grantResponse.safeParse(body);
  if (!parsed.success) throw invalidResponse(what, parsed.error, 'jwt_bearer', status);
  const response = parsed.data;
  // Never use a token type we do not understand (RFC 6749 §5.1, §7.1); DPoP only when we sent a proof (RFC 9449 §5).
  const tokenType = response.token_type.toLowerCase() === 'bearer' ? 'Bearer' : response.token_type.toLowerCase() === 'dpop' && endpoint.dpop ? 'DPoP' : undefined;
  if (!tokenType) {
    throw new CrossAppAccessError(
      `${capitalize(what)} issued a token of type "${untrustedText(response.token_type, 50, redactable([response.access_token, params.assertion]))}"; only ${endpoint.dpop ? 'Bearer and DPoP are' : 'Bearer is'} supported.`,
      { code: 'invalid_token_type', stage: 'jwt_bearer', status },
    );
  }
  const unsendable = headerValueProblem(response.access_token);
  if (unsendable) {
    // Refused here, so it is never cached and never reaches `Headers`, whose TypeError would quote it.
    throw new CrossAppAccessError(
      `${capitalize(what)} issued an access token that cannot be sent in an HTTP Authorization header (it ${unsendable}); it was not used. The authorization server must issue tokens of visible ASCII characters.`,
      { code: 'invalid_response', stage: 'jwt_bearer', status },
    );
  }
  // A lifetime is never negative (RFC 6749 §5.1); 0 means "expired now": used once, never cached.
  if (response.expires_in !== undefined && response.expires_in < 0) {
    throw new CrossAppAccessError(`${capitalize(what)} issued an access token with a negative expires_in (${response.expires_in}); it was not used.`, {
      code: 'invalid_response',
      stage: 'jwt_bearer',
      status,
    });
  }
  // Any refresh_token is ignored on purpose: renewal means a new ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.3).
  return { accessToken: response.access_token, tokenType, scope: response.scope, expiresIn: response.expires_in };
}

/**
 * Why a token cannot go into `Authorization: Bearer <token>` unchanged, or undefined. Only visible
 * ASCII and inner spaces pass: CR, LF, NUL and other controls are not allowed in a field value
 * (RFC 9110 §5.5), non-ASCII is not portable (and `Headers` throws past U+00FF), and fetch trims
 * leading and trailing whitespace (Fetch "normalize"), so such a token would not arrive as issued.
 * RFC 6750 §2.1's stricter b64token grammar is deliberately not enforced: deployed servers issue
 * tokens with `:` in them (e.g. `userId:grantId:secret`).
 */
export function headerValueProblem(token: string): string | undefined {
  if (/[\u0000-\u001f\u007f]/.test(token)) return 'contains a control character such as CR, LF, NUL or TAB';
  if (/[^\u0000-\u007f]/.test(token)) return 'contains a non-ASCII character';
  if (token !== token.trim()) return 'starts or ends with whitespace';
  return undefined;
}
