/**
 * Loopback enterprise IdP: OIDC metadata, JWKS, ID-token minting, and an RFC 8693 token-exchange
 * endpoint that issues ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  SignJWT,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose';
import {
  decodeBasic,
  noteRequest,
  normalizeIssuerPath,
  safeEqual,
  sendJson,
  sendOAuthError,
  sendOverride,
  readTokenServerRequest,
  startHttpServer,
  type ListenOptions,
  type OverrideHook,
  type RecordedRequest,
  type TlsServerOptions,
} from './http-util.js';
import { wellKnownPaths } from './well-known.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_SAML2 = 'urn:ietf:params:oauth:token-type:saml2';
export const TOKEN_TYPE_REFRESH_TOKEN = 'urn:ietf:params:oauth:token-type:refresh_token';
export const ID_JAG_TYP = 'oauth-id-jag+jwt';

export type IdpClientAuth = 'none' | 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt';

/** RFC 7523 §2.2 `client_assertion_type`. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Default `token_endpoint_auth_signing_alg_values_supported` of both servers. */
export const DEFAULT_CLIENT_ASSERTION_ALGS: readonly string[] = ['ES256', 'RS256', 'PS256', 'EdDSA'];
/** Longest accepted `exp - iat` of a client assertion, in seconds. */
export const MAX_CLIENT_ASSERTION_LIFETIME = 300;

/** A `private_key_jwt` client assertion a server received (decoded before verification). */
export interface RecordedClientAssertion {
  header: ProtectedHeaderParameters;
  claims: JWTPayload;
  /** The raw JWS. */
  jws: string;
  /** Whether the server accepted it. */
  accepted: boolean;
  /** Why it was rejected, if it was. */
  rejection?: string;
}

export type ClientAssertionFailure = { status: number; error: string; description: string };

/**
 * Verifies a `private_key_jwt` client assertion (RFC 7523 §2.2 and §3; RFC 7521 §4.2):
 * `client_assertion_type` exact, signature by `publicJwk` with an allowed asymmetric alg, `iss` = `sub`
 * = `clientId`, `aud` one of `audiences`, `exp` in the future with `exp - iat` at most 300 s, a `jti`
 * not in `seenJtis` (added on success), and a `client_id` parameter, if sent, naming the same client.
 * Every assertion is appended to `record`. Returns a failure, or undefined on success.
 */
export async function verifyClientAssertion(
  form: Record<string, string>,
  o: {
    clientId: string;
    publicJwk: JWK;
    audiences: string[];
    algorithms: readonly string[];
    seenJtis: Set<string>;
    record: RecordedClientAssertion[];
  },
): Promise<ClientAssertionFailure | undefined> {
  const jws = form.client_assertion;
  if (jws === undefined) return { status: 401, error: 'invalid_client', description: 'no client_assertion' };
  let header: ProtectedHeaderParameters = {};
  let claims: JWTPayload = {};
  try {
    header = decodeProtectedHeader(jws);
    claims = decodeJwt(jws);
  } catch {
    /* recorded as empty; rejected below */
  }
  const entry: RecordedClientAssertion = { header, claims, jws, accepted: false };
  o.record.push(entry);
  const reject = (description: string, status = 401, error = 'invalid_client'): ClientAssertionFailure => {
    entry.rejection = description;
    return { status, error, description };
  };
  if (form.client_assertion_type !== CLIENT_ASSERTION_TYPE) {
    return reject(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`, 400, 'invalid_request');
  }
  if (form.client_id !== undefined && form.client_id !== o.clientId) {
    return reject('client_id does not name the client of the assertion');
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || !o.algorithms.includes(alg)) return reject(`client assertion alg ${String(alg)} not allowed`);
  let payload: JWTPayload;
  try {
    const key = await importJWK(o.publicJwk, alg);
    ({ payload } = await jwtVerify(jws, key, {
      algorithms: [...o.algorithms],
      issuer: o.clientId,
      subject: o.clientId,
      audience: o.audiences,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
    }));
  } catch (err) {
    return reject(`client assertion rejected: ${(err as Error).message}`);
  }
  if (payload.exp! - payload.iat! > MAX_CLIENT_ASSERTION_LIFETIME) return reject('client assertion lifetime too long');
  if (typeof payload.jti !== 'string' || payload.jti === '') return reject('client assertion jti missing');
  if (o.seenJtis.has(payload.jti)) return reject('client assertion jti already used (replay)');
  o.seenJtis.add(payload.jti);
  entry.accepted = true;
  return undefined;
}

export interface IdpOptions {
  /** Issuer path, e.g. `/tenant-1` → issuer `http://127.0.0.1:PORT/tenant-1`. Default: none (root). */
  issuerPath?: string;
  /** The client's id at the IdP; the ID token's `aud` (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.3). Default `idp-client`. */
  clientId?: string;
  /** Leg-1 client authentication the IdP requires (RFC 6749 §2.3). Default `none`. */
  clientAuth?: IdpClientAuth;
  /** Secret for `client_secret_post`/`client_secret_basic`. Default `idp-secret`. */
  clientSecret?: string;
  /**
   * The client's id at the AS, written into the ID-JAG `client_id` claim: one for every audience, or
   * the id registered at each audience (authorization server issuer), as an IdP that knows each
   * server's registration does. Default `mcp-client`.
   */
  jagClientId?: string | ((audience: string) => string);
  /** Narrows the requested scopes (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.4). Default: grant what was requested. */
  grantScopes?: (requested: string[]) => string[];
  /** ID-JAG lifetime in seconds. Default 300. */
  jagTtlSeconds?: number;
  /** Merged into the metadata document (to serve bad metadata). */
  metadataOverrides?: Record<string, unknown>;
  /** Exact pathnames that serve metadata; replaces the defaults. */
  metadataPaths?: string[];
  /** Also accept `application/json` token requests, like the conformance IdP. Default false. */
  allowJsonBody?: boolean;
  /** Public key of the client, for `clientAuth: 'private_key_jwt'`. */
  clientPublicJwk?: JWK;
  /** `token_endpoint_auth_signing_alg_values_supported` (advertised with `private_key_jwt`). Default ES256, RS256, PS256, EdDSA. */
  signingAlgValuesSupported?: string[];
  /**
   * Seconds: an ID token whose `auth_time` is older than this (or absent) is answered with
   * `insufficient_user_authentication` and this `max_age` (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3). Default: no limit.
   */
  maxAge?: number;
  /**
   * Serve `GET /dev/id-token?sub=alice` (`{ id_token, expires_in }`) to loopback callers only, for
   * `cross-app-access dev`. Default false.
   */
  devIdTokenEndpoint?: boolean;
  /** Port and request log. Default: a free port, no log. */
  listen?: ListenOptions;
  /**
   * Serve over https with this certificate (issuer `https://HOSTNAME:PORT`): for authorization
   * servers that accept only https issuers and JWKS URIs. Default: plain http on 127.0.0.1.
   */
  tls?: TlsServerOptions;
  /** See {@link OverrideHook}. Default: none. */
  answerFirst?: OverrideHook;
}

export interface MintIdTokenOptions {
  sub?: string;
  /** Default: the IdP client id. */
  aud?: string | string[];
  /** Default: the IdP issuer. */
  iss?: string;
  /** Lifetime from now; negative for an already expired token. Default 3600. */
  expiresInSeconds?: number;
  /** The user's authentication time (`auth_time`, OpenID Connect Core §2), in seconds since the epoch; `null` leaves it out. Default: now. */
  authTime?: number | null;
  /** Extra claims (e.g. `email`, `nonce`). */
  extra?: Record<string, unknown>;
}

export interface MintSamlAssertionOptions {
  /** The assertion's `<saml:NameID>`; `''` leaves the NameID out. Default `alice`. */
  nameId?: string;
  /** The `<saml:Issuer>`. Required by the top-level {@link mintSamlAssertion}; the IdP method defaults it to its issuer. */
  issuer?: string;
  /** The `NotOnOrAfter` condition. Default: five minutes from now. */
  notOnOrAfter?: Date;
}

const xmlEscape = (v: string) =>
  v.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
const xmlUnescape = (v: string) =>
  v.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e]!);

/**
 * A test stand-in for a SAML 2 assertion (RFC 8693 §3 `…:saml2`), base64url-encoded: a bare XML
 * string with Issuer, NameID and a NotOnOrAfter condition. It is NOT signed — a real IdP verifies the
 * assertion's XML signature; this fixture only checks issuer, expiry, NameID and single use.
 */
export function mintSamlAssertion(o: MintSamlAssertionOptions & { issuer: string }): string {
  const nameId = o.nameId ?? 'alice';
  const notOnOrAfter = (o.notOnOrAfter ?? new Date(Date.now() + 300_000)).toISOString();
  const xml =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_${randomUUID()}">` +
    `<saml:Issuer>${xmlEscape(o.issuer)}</saml:Issuer>` +
    `<saml:Subject>${nameId === '' ? '' : `<saml:NameID>${xmlEscape(nameId)}</saml:NameID>`}</saml:Subject>` +
    `<saml:Conditions NotOnOrAfter="${notOnOrAfter}"/>` +
    `</saml:Assertion>`;
  return Buffer.from(xml, 'utf8').toString('base64url');
}

/** Reads the stand-in assertion of {@link mintSamlAssertion}; no signature check (see there). */
function parseSamlAssertion(xml: string): { issuer?: string; nameId?: string; notOnOrAfter?: string } {
  const issuer = /<saml:Issuer>([^<]*)<\/saml:Issuer>/.exec(xml)?.[1];
  const nameId = /<saml:NameID(?:\s[^>]*)?>([^<]*)<\/saml:NameID>/.exec(xml)?.[1];
  const notOnOrAfter = /<saml:Conditions\s[^>]*NotOnOrAfter="([^"]*)"/.exec(xml)?.[1];
  return {
    ...(issuer !== undefined ? { issuer: xmlUnescape(issuer) } : {}),
    ...(nameId !== undefined && nameId !== '' ? { nameId: xmlUnescape(nameId) } : {}),
    ...(notOnOrAfter !== undefined ? { notOnOrAfter } : {}),
  };
}

/** A JWT about to be signed, handed to {@link Idp.transformIdJag} for tampering. */
export interface JwtDraft {
  header: JWTHeaderParameters;
  claims: Record<string, unknown>;
}

export interface Idp {
  /** `http://127.0.0.1:PORT[/path]`. */
  readonly issuer: string;
  readonly origin: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  /** Pathnames that answer with metadata. */
  readonly metadataPaths: readonly string[];
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly clientAuth: IdpClientAuth;
  /** Mutable: an AS that assigns client ids at registration is known only at run time. */
  jagClientId: string | ((audience: string) => string);
  /** Public JWK set (also served at `jwksUri`). */
  readonly jwks: JSONWebKeySet;
  /** Public key that verifies ID tokens and ID-JAGs. */
  readonly publicKey: CryptoKey;
  /** Token-endpoint POSTs (ID-JAG exchanges and SAML → refresh-token exchanges alike). */
  readonly counters: { metadata: number; exchange: number };
  /** Every `private_key_jwt` client assertion received (not cleared by `reset`). */
  readonly clientAssertions: RecordedClientAssertion[];
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Scope narrowing (mutable per test). */
  grantScopes: ((requested: string[]) => string[]) | undefined;
  /** Mutates each ID-JAG's header/claims before signing (to mint bad ID-JAGs). */
  transformIdJag: ((draft: JwtDraft) => void) | undefined;
  /** Mutable: see {@link IdpOptions.maxAge}. */
  maxAge: number | undefined;
  /** ES256 ID token signed by this IdP. */
  mintIdToken(options?: MintIdTokenOptions): Promise<string>;
  /** Signs arbitrary ID-JAG claims with this IdP's key (header `typ` defaults to `oauth-id-jag+jwt`). */
  mintIdJag(claims: Record<string, unknown>, header?: Partial<JWTHeaderParameters>): Promise<string>;
  /** Stand-in SAML assertion (base64url, unsigned; see {@link mintSamlAssertion}); issuer defaults to this IdP. */
  mintSamlAssertion(options?: MintSamlAssertionOptions): string;
  /**
   * Issues an IdP refresh token for `sub` (default `alice`) directly, as the SAML exchange would:
   * opaque and random, or exactly `value` when given (e.g. a token that happens to look like a JWT).
   */
  issueRefreshToken(sub?: string, value?: string): string;
  /** Live IdP refresh tokens → the subject they are bound to (not cleared by `reset`). */
  readonly refreshTokens: ReadonlyMap<string, string>;
  /** Invalidates every IdP refresh token issued so far. */
  revokeRefreshTokens(): void;
  /** Zeroes counters and clears `requests`. */
  reset(): void;
  close(): Promise<void>;
}

type Fail = {
  status: number;
  error: string;
  description: string;
  headers?: Record<string, string>;
  /** More members of the error body, e.g. `max_age`. */
  extra?: Record<string, unknown>;
};

export async function startIdp(options: IdpOptions = {}): Promise<Idp> {
  const issuerPath = normalizeIssuerPath(options.issuerPath);
  const clientId = options.clientId ?? 'idp-client';
  const clientAuth = options.clientAuth ?? 'none';
  const clientSecret = clientAuth === 'none' ? options.clientSecret : (options.clientSecret ?? 'idp-secret');
  const jagTtl = options.jagTtlSeconds ?? 300;
  const allowJson = options.allowJsonBody ?? false;
  const signingAlgs = options.signingAlgValuesSupported ?? [...DEFAULT_CLIENT_ASSERTION_ALGS];
  const seenAssertionJtis = new Set<string>();
  /** IdP refresh token → NameID / sub. */
  const refreshTokens = new Map<string, string>();
  /** Decoded SAML assertions already exchanged (each is single use). */
  const usedSamlAssertions = new Set<string>();
  if (clientAuth === 'private_key_jwt' && !options.clientPublicJwk) {
    throw new Error('startIdp: clientAuth private_key_jwt needs clientPublicJwk');
  }

  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const kid = `idp-${randomUUID().slice(0, 8)}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const jwks: JSONWebKeySet = { keys: [jwk] };

  const tokenPath = `${issuerPath}/token`;
  const jwksPath = `${issuerPath}/jwks`;
  const metadataPaths = options.metadataPaths ?? wellKnownPaths(issuerPath, 'openid-configuration', true);

  // Filled in once the port is known.
  let issuer = '';

  const idp: Idp = {
    issuer: '',
    origin: '',
    tokenEndpoint: '',
    jwksUri: '',
    metadataPaths,
    clientId,
    clientSecret,
    clientAuth,
    jagClientId: options.jagClientId ?? 'mcp-client',
    jwks,
    publicKey,
    counters: { metadata: 0, exchange: 0 },
    clientAssertions: [],
    requests: [],
    grantScopes: options.grantScopes,
    transformIdJag: undefined,
    maxAge: options.maxAge,
    async mintIdToken(o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const authTime = o.authTime === undefined ? now : o.authTime;
      return new SignJWT({ ...(authTime === null ? {} : { auth_time: authTime }), ...o.extra })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
        .setIssuer(o.iss ?? issuer)
        .setSubject(o.sub ?? 'alice')
        .setAudience(o.aud ?? clientId)
        .setIssuedAt(now)
        .setExpirationTime(now + (o.expiresInSeconds ?? 3600))
        .setJti(randomUUID())
        .sign(privateKey);
    },
    async mintIdJag(claims, header = {}) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: ID_JAG_TYP, kid, ...header })
        .sign(privateKey);
    },
    mintSamlAssertion(o = {}) {
      return mintSamlAssertion({ ...o, issuer: o.issuer ?? issuer });
    },
    issueRefreshToken(sub = 'alice', value?: string) {
      const rt = value ?? randomBytes(32).toString('base64url');
      refreshTokens.set(rt, sub);
      return rt;
    },
    refreshTokens,
    revokeRefreshTokens() {
      refreshTokens.clear();
    },
    reset() {
      idp.counters.metadata = 0;
      idp.counters.exchange = 0;
      idp.requests.length = 0;
    },
    close: async () => {},
  };

  function metadata(): Record<string, unknown> {
    return {
      issuer,
      token_endpoint: idp.tokenEndpoint,
      jwks_uri: idp.jwksUri,
      grant_types_supported: [GRANT_TOKEN_EXCHANGE],
      token_endpoint_auth_methods_supported: [clientAuth],
      ...(clientAuth === 'private_key_jwt' ? { token_endpoint_auth_signing_alg_values_supported: signingAlgs } : {}),
      // draft-ietf-oauth-identity-assertion-authz-grant-04 §7.1: which requested_token_types the IdP can issue.
      identity_chaining_requested_token_types_supported: [TOKEN_TYPE_ID_JAG],
      subject_token_types_supported: [TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_SAML2, TOKEN_TYPE_REFRESH_TOKEN],
      id_token_signing_alg_values_supported: ['ES256'],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      ...options.metadataOverrides,
    };
  }

  /** RFC 6749 §2.3 client authentication for leg 1. */
  async function authenticate(req: IncomingMessage, form: Record<string, string>): Promise<Fail | undefined> {
    const basic = decodeBasic(req.headers.authorization);
    const challenge = { 'www-authenticate': 'Basic realm="idp"' };
    const invalid = (description: string): Fail => ({
      status: 401,
      error: 'invalid_client',
      description,
      ...(basic.kind !== 'none' || clientAuth === 'client_secret_basic' ? { headers: challenge } : {}),
    });
    if (basic.kind === 'malformed') return invalid('malformed Basic credentials');
    // RFC 6749 §2.3: one authentication method per request.
    if (basic.kind === 'basic' && (form.client_secret !== undefined || form.client_assertion !== undefined)) {
      return { status: 400, error: 'invalid_request', description: 'more than one client authentication method' };
    }
    if (form.client_assertion !== undefined && form.client_secret !== undefined) {
      return { status: 400, error: 'invalid_request', description: 'more than one client authentication method' };
    }
    if (form.client_assertion !== undefined || form.client_assertion_type !== undefined) {
      if (clientAuth !== 'private_key_jwt') return invalid('private_key_jwt is not allowed for this client');
      if (form.client_assertion === undefined) {
        return { status: 400, error: 'invalid_request', description: 'client_assertion_type without client_assertion' };
      }
      const failure = await verifyClientAssertion(form, {
        clientId,
        publicJwk: options.clientPublicJwk!,
        audiences: [issuer, idp.tokenEndpoint],
        algorithms: signingAlgs,
        seenJtis: seenAssertionJtis,
        record: idp.clientAssertions,
      });
      return failure && { ...failure, ...(failure.status === 401 ? { headers: challenge } : {}) };
    }
    switch (clientAuth) {
      case 'private_key_jwt':
        return invalid('private_key_jwt required');
      case 'none':
        if (basic.kind === 'basic') return invalid('client_secret_basic is not allowed for this client');
        if (form.client_secret !== undefined) return invalid('client_secret_post is not allowed for this client');
        if (form.client_id !== undefined && form.client_id !== clientId) return invalid('unknown client');
        return undefined;
      case 'client_secret_post':
        if (basic.kind === 'basic') return invalid('client_secret_basic is not allowed for this client');
        if (form.client_id !== clientId) return invalid('unknown client');
        if (form.client_secret === undefined || !safeEqual(form.client_secret, clientSecret ?? ''))
          return invalid('bad client secret');
        return undefined;
      case 'client_secret_basic':
        if (basic.kind !== 'basic') return invalid('client_secret_basic required');
        if (basic.clientId !== clientId) return invalid('unknown client');
        if (!safeEqual(basic.clientSecret, clientSecret ?? '')) return invalid('bad client secret');
        if (form.client_id !== undefined && form.client_id !== basic.clientId) {
          return { status: 400, error: 'invalid_request', description: 'client_id does not match Basic credentials' };
        }
        return undefined;
    }
  }

  /**
   * draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3: the user must have authenticated within `maxAge` seconds (the ID token's
   * `auth_time`), else `insufficient_user_authentication` with `max_age`, as RFC 9470 §3 does.
   */
  function staleAuthentication(payload: JWTPayload): Fail | undefined {
    const maxAge = idp.maxAge;
    if (maxAge === undefined) return undefined;
    const authTime = payload.auth_time;
    if (typeof authTime === 'number' && Math.floor(Date.now() / 1000) - authTime <= maxAge) return undefined;
    return {
      status: 400,
      error: 'insufficient_user_authentication',
      description: 'a more recent user authentication is required',
      extra: { max_age: maxAge },
    };
  }

  /** RFC 8693 §2.1 token exchange, ID-JAG profile (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3). */
  async function exchange(req: IncomingMessage, res: ServerResponse, form: Record<string, string>) {
    const fail = (f: Fail) => sendJson(res, f.status, { error: f.error, error_description: f.description, ...f.extra }, f.headers);
    const authFail = await authenticate(req, form);
    if (authFail) return fail(authFail);
    if (form.grant_type !== GRANT_TOKEN_EXCHANGE) {
      return fail({ status: 400, error: 'unsupported_grant_type', description: `grant_type must be ${GRANT_TOKEN_EXCHANGE}` });
    }
    // draft-ietf-oauth-identity-assertion-authz-grant-04 §4.5: a SAML assertion is exchanged for an IdP refresh token first.
    if (form.subject_token_type === TOKEN_TYPE_SAML2) return samlExchange(res, form);
    for (const p of ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource']) {
      if (form[p] === undefined) return fail({ status: 400, error: 'invalid_request', description: `missing ${p}` });
    }
    if (form.requested_token_type !== TOKEN_TYPE_ID_JAG) {
      return fail({ status: 400, error: 'invalid_request', description: `requested_token_type must be ${TOKEN_TYPE_ID_JAG}` });
    }
    let sub: string;
    if (form.subject_token_type === TOKEN_TYPE_REFRESH_TOKEN) {
      // draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3: an IdP refresh token this IdP issued, bound to its NameID.
      const bound = refreshTokens.get(form.subject_token!);
      if (bound === undefined) {
        return fail({ status: 400, error: 'invalid_grant', description: 'subject_token rejected: unknown or revoked refresh token' });
      }
      sub = bound;
    } else if (form.subject_token_type === TOKEN_TYPE_ID_TOKEN) {
      // draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.3: the subject token must be an ID token this IdP issued to the authenticated client.
      try {
        const { payload } = await jwtVerify(form.subject_token!, publicKey, {
          issuer,
          audience: clientId,
          algorithms: ['ES256'],
          requiredClaims: ['sub', 'exp', 'iat'],
        });
        sub = payload.sub!;
        const tooOld = staleAuthentication(payload);
        if (tooOld) return fail(tooOld);
      } catch (err) {
        return fail({ status: 400, error: 'invalid_grant', description: `subject_token rejected: ${(err as Error).message}` });
      }
    } else {
      return fail({
        status: 400,
        error: 'invalid_request',
        description: `subject_token_type must be ${TOKEN_TYPE_ID_TOKEN}, ${TOKEN_TYPE_SAML2} or ${TOKEN_TYPE_REFRESH_TOKEN}`,
      });
    }

    const requested = splitScope(form.scope);
    const granted = idp.grantScopes ? idp.grantScopes(requested) : requested;
    const now = Math.floor(Date.now() / 1000);
    const draft: JwtDraft = {
      header: { alg: 'ES256', typ: ID_JAG_TYP, kid },
      claims: {
        iss: issuer,
        sub,
        aud: form.audience,
        client_id: typeof idp.jagClientId === 'function' ? idp.jagClientId(form.audience ?? '') : idp.jagClientId,
        resource: form.resource,
        ...(granted.length > 0 ? { scope: granted.join(' ') } : {}),
        jti: randomUUID(),
        iat: now,
        exp: now + jagTtl,
      },
    };
    idp.transformIdJag?.(draft);
    const jag = await new SignJWT(draft.claims).setProtectedHeader(draft.header).sign(privateKey);
    // RFC 8693 §2.2.1: scope is returned only when it differs from the request.
    const scopeDiffers = granted.join(' ') !== requested.join(' ');
    sendJson(res, 200, {
      issued_token_type: TOKEN_TYPE_ID_JAG,
      access_token: jag,
      token_type: 'N_A',
      expires_in: jagTtl,
      ...(scopeDiffers ? { scope: granted.join(' ') } : {}),
    });
  }

  /**
   * RFC 8693 exchange of a (stand-in, unsigned) SAML 2 assertion for an opaque IdP refresh token
   * (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.5). Client authentication has already passed.
   */
  function samlExchange(res: ServerResponse, form: Record<string, string>) {
    const fail = (error: string, description: string) => sendOAuthError(res, 400, error, description);
    if (form.subject_token === undefined) return fail('invalid_request', 'missing subject_token');
    if (form.requested_token_type !== TOKEN_TYPE_REFRESH_TOKEN) {
      return fail('invalid_request', `with a ${TOKEN_TYPE_SAML2} subject, requested_token_type must be ${TOKEN_TYPE_REFRESH_TOKEN}`);
    }
    const scopes = splitScope(form.scope);
    if (!scopes.includes('openid') || !scopes.includes('offline_access')) {
      return fail('invalid_scope', 'scope must include openid and offline_access');
    }
    if (!/^[A-Za-z0-9_-]+$/.test(form.subject_token)) return fail('invalid_grant', 'subject_token rejected: not base64url');
    const xml = Buffer.from(form.subject_token, 'base64url').toString('utf8');
    // Stand-in checks only: a real IdP verifies the assertion's XML signature here.
    const assertion = parseSamlAssertion(xml);
    if (assertion.issuer !== issuer) return fail('invalid_grant', 'subject_token rejected: SAML Issuer is not this IdP');
    const notOnOrAfter = assertion.notOnOrAfter === undefined ? NaN : Date.parse(assertion.notOnOrAfter);
    if (!(notOnOrAfter > Date.now())) return fail('invalid_grant', 'subject_token rejected: SAML assertion expired (NotOnOrAfter)');
    if (assertion.nameId === undefined) return fail('invalid_grant', 'subject_token rejected: SAML assertion has no NameID');
    if (usedSamlAssertions.has(xml)) return fail('invalid_grant', 'subject_token rejected: SAML assertion already used (replay)');
    usedSamlAssertions.add(xml);
    const rt = idp.issueRefreshToken(assertion.nameId);
    sendJson(res, 200, { issued_token_type: TOKEN_TYPE_REFRESH_TOKEN, access_token: rt, token_type: 'N_A' });
  }

  /** The dev endpoint: an ID token for `?sub=`, only to a loopback caller that named a loopback host. */
  async function devIdToken(req: IncomingMessage, res: ServerResponse) {
    const remote = req.socket.remoteAddress ?? '';
    // The Host check stops a web page that rebinds its own name to 127.0.0.1 (DNS rebinding).
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(remote) || !['127.0.0.1', 'localhost', '[::1]'].includes(host)) {
      return sendOAuthError(res, 403, 'access_denied', 'the dev ID token endpoint answers loopback requests only');
    }
    const sub = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('sub') ?? 'alice';
    if (sub === '' || sub.length > 256) return sendOAuthError(res, 400, 'invalid_request', 'sub must be 1 to 256 characters');
    noteRequest(req, { sub });
    sendJson(res, 200, { id_token: await idp.mintIdToken({ sub }), expires_in: 3600 });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const { path, method, isToken, isMetadata, form, parseError, headers, recorded } = await readTokenServerRequest(req, {
      tokenPath,
      metadataPaths,
      allowJson: allowJson,
      count: (kind) => {
        if (kind === 'token') idp.counters.exchange++;
        else idp.counters.metadata++;
      },
    });
    idp.requests.push(recorded);
    const reply = options.answerFirst?.({ path, method, headers, form });
    if (reply) return sendOverride(res, reply);

    if (isMetadata && method === 'GET') return sendJson(res, 200, metadata(), { 'cache-control': 'max-age=60' });
    if (path === jwksPath && method === 'GET') return sendJson(res, 200, jwks);
    if (options.devIdTokenEndpoint && path === `${issuerPath}/dev/id-token` && method === 'GET') return devIdToken(req, res);
    if (isToken) {
      if (method !== 'POST') {
        return sendOAuthError(res, 405, 'invalid_request', 'token endpoint requires POST', { allow: 'POST' });
      }
      if (parseError !== undefined) return sendOAuthError(res, 400, 'invalid_request', parseError);
      return exchange(req, res, form);
    }
    sendJson(res, 404, { error: 'not_found' });
  }

  const server = await startHttpServer(handle, options.tls ? { ...options.listen, tls: options.tls } : options.listen);
  issuer = `${server.url}${issuerPath}`;
  Object.assign(idp, {
    issuer,
    origin: server.url,
    tokenEndpoint: `${server.url}${tokenPath}`,
    jwksUri: `${server.url}${jwksPath}`,
    close: server.close,
  });
  return idp;
}

/** Splits an RFC 6749 §3.3 scope string. */
export function splitScope(scope: string | undefined): string[] {
  return (scope ?? '').split(' ').filter((s) => s !== '');
}
