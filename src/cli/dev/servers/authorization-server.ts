/**
 * Loopback MCP authorization server (the "Resource AS"): RFC 8414 metadata and an RFC 7523
 * jwt-bearer token endpoint that redeems ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4, MCP Enterprise-Managed Authorization (stable) §5) for
 * opaque access tokens.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import {
  decodeBasic,
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
} from './http-util.js';
import { wellKnownPaths } from './well-known.js';
import {
  DEFAULT_CLIENT_ASSERTION_ALGS,
  ID_JAG_TYP,
  splitScope,
  verifyClientAssertion,
  type RecordedClientAssertion,
} from './idp.js';

export const GRANT_JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const GRANT_PROFILE_ID_JAG = 'urn:ietf:params:oauth:grant-profile:id-jag';

export type AsClientAuth = 'client_secret_basic' | 'client_secret_post' | 'none' | 'private_key_jwt';

/** A client registered at the AS (the ID-JAG `client_id`). */
export interface AsClient {
  clientId: string;
  clientSecret?: string;
  method: AsClientAuth;
  /** The client's public key, for `method: 'private_key_jwt'`. */
  publicJwk?: JWK;
}

export interface AuthorizationServerOptions {
  /**
   * The IdP (or IdPs, one per enterprise) whose ID-JAGs this AS accepts (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.1: trust is
   * configured, not discovered).
   */
  trustedIdp: TrustedIdp | readonly TrustedIdp[];
  clients: AsClient[];
  /** Issuer path, e.g. `/tenant-7`. Default: root. */
  issuerPath?: string;
  /** `token_endpoint_auth_methods_supported`. Default: the clients' methods. */
  authMethodsSupported?: string[];
  /** Default 3600. */
  accessTokenTtlSeconds?: number;
  /** Merged into the metadata document (to serve bad metadata). */
  metadataOverrides?: Record<string, unknown>;
  /** Exact pathnames that serve metadata; replaces the defaults. */
  metadataPaths?: string[];
  /** If set, an ID-JAG's `resource` claim must be one of these (like the conformance AS). */
  allowedResources?: string[];
  /**
   * `token_endpoint_auth_signing_alg_values_supported`, advertised when a client uses
   * `private_key_jwt` (or when given). Default ES256, RS256, PS256, EdDSA.
   */
  signingAlgValuesSupported?: string[];
  /** Port and request log. Default: a free port, no log. */
  listen?: ListenOptions;
  /** See {@link OverrideHook}. Default: none. */
  answerFirst?: OverrideHook;
  /** Where issued access tokens are kept (the test servers keep it, to revoke them). Default: a new Map. */
  tokens?: Map<string, AccessTokenInfo>;
}

/** An IdP an authorization server accepts ID-JAGs from. */
export interface TrustedIdp {
  issuer: string;
  publicKey: CryptoKey;
}

/** What an access token was issued for. */
export interface AccessTokenInfo {
  sub: string;
  /** The issuer of the ID-JAG it was granted for (the user's enterprise IdP); absent when issued directly. */
  idp?: string;
  clientId: string;
  resource: string | undefined;
  scopes: string[];
  /** Seconds since the epoch. */
  expiresAt: number;
}

export interface AuthorizationServer {
  /** `http://127.0.0.1:PORT[/path]`. */
  readonly issuer: string;
  readonly origin: string;
  readonly tokenEndpoint: string;
  /** Pathnames that answer with metadata. */
  readonly metadataPaths: readonly string[];
  readonly counters: { metadata: number; grant: number };
  readonly requests: RecordedRequest[];
  /** Mutable: lifetime of newly issued tokens. */
  accessTokenTtlSeconds: number;
  /** Mutable: see {@link AuthorizationServerOptions.allowedResources}. */
  allowedResources: string[] | undefined;
  /**
   * Mutable: shapes each new access token from 32 random base64url bytes, e.g. Cloudflare's
   * `userId:grantId:secret` form, or a malformed token. Default: the random string itself.
   */
  accessTokenFormat: ((random: string) => string) | undefined;
  /** `jti`s already redeemed (MCP Enterprise-Managed Authorization (stable) §7.4.2). */
  readonly usedJtis: ReadonlySet<string>;
  /** Every `private_key_jwt` client assertion received (not cleared by `reset`). */
  readonly clientAssertions: RecordedClientAssertion[];
  /**
   * Serves the token endpoint at `path` from now on (under the issuer path, e.g. `/oauth2/v2/token`)
   * and updates the metadata's `token_endpoint`; the old path answers 404 like any unknown path.
   */
  moveTokenEndpoint(path: string): void;
  /** Looks an access token up; undefined if unknown, revoked or expired. */
  verifyAccessToken(token: string): AccessTokenInfo | undefined;
  /** Issues a token directly (bypassing the grant), for tests. */
  issueAccessToken(info: Omit<AccessTokenInfo, 'expiresAt'> & { ttlSeconds?: number }): string;
  revoke(token: string): void;
  /** Zeroes counters and clears `requests` (issued tokens and used jtis are kept). */
  reset(): void;
  close(): Promise<void>;
}

class GrantError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
    readonly headers?: Record<string, string>,
  ) {
    super(description);
  }
}

export async function startAuthorizationServer(options: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const issuerPath = normalizeIssuerPath(options.issuerPath);
  // Mutable: moveTokenEndpoint() serves it elsewhere.
  let tokenPath = `${issuerPath}/token`;
  const metadataPaths =
    options.metadataPaths ??
    (issuerPath === ''
      ? wellKnownPaths('', 'oauth-authorization-server')
      : [
          ...wellKnownPaths(issuerPath, 'oauth-authorization-server'),
          ...wellKnownPaths(issuerPath, 'openid-configuration', true),
        ]);
  const clients = new Map(options.clients.map((c) => [c.clientId, c]));
  const tokens = options.tokens ?? new Map<string, AccessTokenInfo>();
  const usedJtis = new Set<string>();
  const seenAssertionJtis = new Set<string>();
  const signingAlgs = options.signingAlgValuesSupported ?? [...DEFAULT_CLIENT_ASSERTION_ALGS];
  const hasKeyClient = options.clients.some((c) => c.method === 'private_key_jwt');
  for (const c of options.clients) {
    if (c.method === 'private_key_jwt' && !c.publicJwk) throw new Error(`AS client ${c.clientId}: private_key_jwt needs publicJwk`);
  }
  let issuer = '';

  const as: AuthorizationServer = {
    issuer: '',
    origin: '',
    tokenEndpoint: '',
    metadataPaths,
    counters: { metadata: 0, grant: 0 },
    requests: [],
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600,
    allowedResources: options.allowedResources,
    accessTokenFormat: undefined,
    usedJtis,
    clientAssertions: [],
    moveTokenEndpoint(path) {
      tokenPath = `${issuerPath}${path.startsWith('/') ? path : `/${path}`}`;
      Object.assign(as, { tokenEndpoint: `${as.origin}${tokenPath}` });
    },
    verifyAccessToken(token) {
      const info = tokens.get(token);
      if (!info) return undefined;
      if (info.expiresAt <= Math.floor(Date.now() / 1000)) return undefined;
      return { ...info, scopes: [...info.scopes] };
    },
    issueAccessToken({ ttlSeconds, ...info }) {
      const random = randomBytes(32).toString('base64url');
      const token = as.accessTokenFormat ? as.accessTokenFormat(random) : random;
      const expiresAt = Math.floor(Date.now() / 1000) + (ttlSeconds ?? as.accessTokenTtlSeconds);
      tokens.set(token, { ...info, scopes: [...info.scopes], expiresAt });
      return token;
    },
    revoke(token) {
      tokens.delete(token);
    },
    reset() {
      as.counters.metadata = 0;
      as.counters.grant = 0;
      as.requests.length = 0;
    },
    close: async () => {},
  };

  function metadata(): Record<string, unknown> {
    return {
      issuer,
      token_endpoint: as.tokenEndpoint,
      grant_types_supported: [GRANT_JWT_BEARER],
      token_endpoint_auth_methods_supported: options.authMethodsSupported ?? [
        ...new Set(options.clients.map((c) => c.method)),
      ],
      ...(hasKeyClient || options.signingAlgValuesSupported
        ? { token_endpoint_auth_signing_alg_values_supported: signingAlgs }
        : {}),
      // draft-ietf-oauth-identity-assertion-authz-grant-04 §7.2 / MCP Enterprise-Managed Authorization (stable) §6: advertises ID-JAG redemption.
      authorization_grant_profiles_supported: [GRANT_PROFILE_ID_JAG],
      response_types_supported: [],
      ...options.metadataOverrides,
    };
  }

  /** RFC 6749 §2.3 client authentication for leg 2; returns the client id. */
  async function authenticate(req: IncomingMessage, form: Record<string, string>): Promise<string> {
    const basic = decodeBasic(req.headers.authorization);
    const invalid = (description: string) =>
      new GrantError(401, 'invalid_client', description, { 'www-authenticate': 'Basic realm="as"' });
    if (basic.kind === 'malformed') throw invalid('malformed Basic credentials');
    if (basic.kind === 'basic' && (form.client_secret !== undefined || form.client_assertion !== undefined)) {
      throw new GrantError(400, 'invalid_request', 'more than one client authentication method');
    }
    if (form.client_assertion !== undefined && form.client_secret !== undefined) {
      throw new GrantError(400, 'invalid_request', 'more than one client authentication method');
    }
    if (form.client_assertion !== undefined || form.client_assertion_type !== undefined) {
      if (form.client_assertion === undefined) {
        throw new GrantError(400, 'invalid_request', 'client_assertion_type without client_assertion');
      }
      // RFC 7523 §3: the client is the assertion's sub (client_id, if sent, must match; checked below).
      let claimed: string | undefined = form.client_id;
      if (claimed === undefined) {
        try {
          const sub = decodeJwt(form.client_assertion).sub;
          claimed = typeof sub === 'string' ? sub : undefined;
        } catch {
          claimed = undefined;
        }
      }
      const client = claimed === undefined ? undefined : clients.get(claimed);
      if (!client || client.method !== 'private_key_jwt') throw invalid('unknown client or private_key_jwt not allowed');
      const failure = await verifyClientAssertion(form, {
        clientId: client.clientId,
        publicJwk: client.publicJwk!,
        audiences: [issuer, as.tokenEndpoint],
        algorithms: signingAlgs,
        seenJtis: seenAssertionJtis,
        record: as.clientAssertions,
      });
      if (failure) {
        throw new GrantError(
          failure.status,
          failure.error,
          failure.description,
          failure.status === 401 ? { 'www-authenticate': 'Basic realm="as"' } : undefined,
        );
      }
      return client.clientId;
    }
    if (basic.kind === 'basic') {
      // Halves were decodeURIComponent-ed, as by the conformance AS (RFC 6749 §2.3.1).
      const client = clients.get(basic.clientId);
      if (!client || client.method !== 'client_secret_basic') throw invalid('unknown client or method not allowed');
      if (!safeEqual(basic.clientSecret, client.clientSecret ?? '')) throw invalid('bad client secret');
      if (form.client_id !== undefined && form.client_id !== basic.clientId) {
        throw new GrantError(400, 'invalid_request', 'client_id does not match Basic credentials');
      }
      return client.clientId;
    }
    if (form.client_id === undefined) throw invalid('no client authentication');
    const client = clients.get(form.client_id);
    if (!client) throw invalid('unknown client');
    if (form.client_secret !== undefined) {
      if (client.method !== 'client_secret_post') throw invalid('client_secret_post not allowed for this client');
      if (!safeEqual(form.client_secret, client.clientSecret ?? '')) throw invalid('bad client secret');
      return client.clientId;
    }
    if (client.method !== 'none') throw invalid(`client must authenticate with ${client.method}`);
    return client.clientId;
  }

  /** RFC 7523 §3 / draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.1 assertion validation. */
  const trustedIdps: readonly TrustedIdp[] = Array.isArray(options.trustedIdp) ? options.trustedIdp : [options.trustedIdp as TrustedIdp];
  /** The trusted IdP an assertion names as its issuer (read, then verified with that IdP's key). */
  function trustedIdpOf(assertion: string): TrustedIdp | undefined {
    try {
      const iss = decodeJwt(assertion).iss;
      return trustedIdps.find((idp) => idp.issuer === iss);
    } catch {
      return undefined;
    }
  }

  async function verifyIdJag(assertion: string, clientId: string, resource: string | undefined): Promise<JWTPayload> {
    const bad = (d: string) => new GrantError(400, 'invalid_grant', d);
    let typ: string | undefined;
    try {
      typ = decodeProtectedHeader(assertion).typ;
    } catch {
      throw bad('assertion is not a JWS');
    }
    // draft-ietf-oauth-identity-assertion-authz-grant-04 §3.1; RFC 8725 §3.11: typ compared case-insensitively, "application/" prefix optional.
    const t = (typ ?? '').toLowerCase().replace(/^application\//, '');
    if (t !== ID_JAG_TYP) throw bad(`assertion typ must be ${ID_JAG_TYP}`);
    let payload: JWTPayload;
    const trusted = trustedIdpOf(assertion);
    if (!trusted) throw bad('assertion issuer is not a trusted IdP');
    try {
      ({ payload } = await jwtVerify(assertion, trusted.publicKey, {
        issuer: trusted.issuer,
        audience: issuer,
        algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'],
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      }));
    } catch (err) {
      throw bad(`assertion rejected: ${(err as Error).message}`);
    }
    if (payload.client_id !== clientId) throw bad('assertion client_id does not match the authenticated client');
    if (resource !== undefined && payload.resource !== resource) {
      throw bad('assertion resource does not match the resource parameter');
    }
    if (as.allowedResources && !as.allowedResources.includes(String(payload.resource))) {
      throw bad('assertion resource is not served by this AS');
    }
    // MCP Enterprise-Managed Authorization (stable) §7.4.2: each ID-JAG is redeemable once.
    if (usedJtis.has(payload.jti!)) throw bad('assertion jti already used (replay)');
    usedJtis.add(payload.jti!);
    return payload;
  }

  async function grant(req: IncomingMessage, res: ServerResponse, form: Record<string, string>) {
    const clientId = await authenticate(req, form);
    if (form.grant_type !== GRANT_JWT_BEARER) {
      throw new GrantError(400, 'unsupported_grant_type', `grant_type must be ${GRANT_JWT_BEARER}`);
    }
    if (form.assertion === undefined) throw new GrantError(400, 'invalid_request', 'missing assertion');
    // The jti is spent once the assertion itself verifies, even if the scope check below fails.
    const claims = await verifyIdJag(form.assertion, clientId, form.resource);

    // RFC 6749 §3.3: the requested scope must be within what the ID-JAG grants.
    const jagScopes = typeof claims.scope === 'string' ? splitScope(claims.scope) : undefined;
    let scopes = splitScope(form.scope);
    if (jagScopes) {
      const extra = scopes.filter((s) => !jagScopes.includes(s));
      if (extra.length > 0) throw new GrantError(400, 'invalid_scope', `scope not granted by the assertion: ${extra.join(' ')}`);
      if (form.scope === undefined) scopes = jagScopes;
    }
    const resource = typeof claims.resource === 'string' ? claims.resource : form.resource;
    const ttl = as.accessTokenTtlSeconds;
    const token = as.issueAccessToken({ sub: claims.sub!, idp: claims.iss!, clientId, resource, scopes, ttlSeconds: ttl });
    sendJson(res, 200, {
      access_token: token,
      token_type: 'Bearer',
      expires_in: ttl,
      ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const { path, method, isToken, isMetadata, form, parseError, headers, recorded } = await readTokenServerRequest(req, {
      tokenPath,
      metadataPaths,
      allowJson: false,
      count: (kind) => {
        if (kind === 'token') as.counters.grant++;
        else as.counters.metadata++;
      },
    });
    as.requests.push(recorded);
    const reply = options.answerFirst?.({ path, method, headers, form });
    if (reply) return sendOverride(res, reply);

    if (isMetadata && method === 'GET') return sendJson(res, 200, metadata(), { 'cache-control': 'max-age=60' });
    if (isToken) {
      if (method !== 'POST') return sendOAuthError(res, 405, 'invalid_request', 'token endpoint requires POST', { allow: 'POST' });
      if (parseError !== undefined) return sendOAuthError(res, 400, 'invalid_request', parseError);
      try {
        await grant(req, res, form);
      } catch (err) {
        if (!(err instanceof GrantError)) throw err;
        sendOAuthError(res, err.status, err.error, err.message, err.headers);
      }
      return;
    }
    sendJson(res, 404, { error: 'not_found' });
  }

  const server = await startHttpServer(handle, options.listen);
  issuer = `${server.url}${issuerPath}`;
  Object.assign(as, { issuer, origin: server.url, tokenEndpoint: `${server.url}${tokenPath}`, close: server.close });
  return as;
}
