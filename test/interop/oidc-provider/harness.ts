/**
 * `oidc-provider` 9 (an independent OAuth server with RFC 9449 DPoP built in) as the MCP server's
 * authorization server, with a jwt-bearer grant for ID-JAGs registered on it (`registerGrantType`):
 * the provider validates every DPoP proof itself (its nonces included) and binds the tokens it issues
 * (`cnf.jkt`). The protected resource beside it looks tokens up in the provider and verifies the
 * resource requests' proofs with `jose`. The IdP is the repository's loopback IdP.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import Provider, { errors, type OidcContext } from 'oidc-provider';
import validateDpop, { checkDpopReplay } from 'oidc-provider/lib/helpers/validate_dpop.js';
import { createDpopVerifier, isProofFailure, type DpopVerifier } from '../../../src/cli/dev/servers/dpop.js';
import { startIdp, type Idp } from '../../servers/idp.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const CLIENT = { clientId: 'mcp-client', clientSecret: 'mcp-secret' };

export interface Interop {
  readonly idp: Idp;
  /** The provider's issuer. */
  readonly issuer: string;
  /** `${origin}/mcp` of the protected resource. */
  readonly resource: string;
  /** Mutable: the provider demands a DPoP nonce at its token endpoint (features.dPoP.requireNonce). */
  requireNonce: boolean;
  /** The resource's proof verifier; `resourceDpop.requireNonce` makes the resource demand its nonce. */
  readonly resourceDpop: DpopVerifier;
  /** Every token endpoint answer: status, error, token_type, and whether a DPoP proof came. */
  readonly grants: { status: number; error?: string; tokenType?: string; proof: boolean; nonce: boolean }[];
  /** Every request to the resource: scheme, status. */
  readonly resourceRequests: { scheme: string | undefined; proof: boolean; status: number; path: string }[];
  close(): Promise<void>;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startInterop(): Promise<Interop> {
  const idp = await startIdp();
  const asServer = createServer();
  const rsServer = createServer();
  const issuer = await listen(asServer);
  const rsOrigin = await listen(rsServer);
  const resource = `${rsOrigin}/mcp`;
  const spentJtis = new Set<string>();
  /** Token → the user it was issued for (the provider keeps no account for this grant). */
  const subjects = new Map<string, unknown>();

  const interop: Interop = {
    idp,
    issuer,
    resource,
    requireNonce: false,
    resourceDpop: createDpopVerifier(),
    grants: [],
    resourceRequests: [],
    close: async () => {
      await Promise.all([close(asServer), close(rsServer), idp.close()]);
    },
  };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.clientId,
        client_secret: CLIENT.clientSecret,
        grant_types: [JWT_BEARER],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => interop.requireNonce },
    },
    // draft-ietf-oauth-identity-assertion-authz-grant-04 §7.2: the ID-JAG profile, advertised.
    discovery: { authorization_grant_profiles_supported: ['urn:ietf:params:oauth:grant-profile:id-jag'] },
    ttl: { ClientCredentials: 600 },
  });

  // RFC 7523 jwt-bearer with an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4), DPoP-bound when a proof came.
  provider.registerGrantType(
    JWT_BEARER,
    async (ctx: OidcContext) => {
      const { assertion, resource: requested, scope } = ctx.oidc.params;
      const dPoP = await validateDpop(provider, ctx);
      if (!assertion) throw new errors.InvalidRequest('missing assertion');
      let claims: Record<string, unknown>;
      try {
        ({ payload: claims } = await jwtVerify(assertion, idp.publicKey, { issuer: idp.issuer, audience: issuer, typ: 'oauth-id-jag+jwt', requiredClaims: ['sub', 'jti', 'exp'] }));
      } catch (error) {
        throw new errors.InvalidGrant(`assertion rejected: ${(error as Error).message}`);
      }
      if (claims.client_id !== ctx.oidc.client.clientId) throw new errors.InvalidGrant('assertion client_id does not match the client');
      if (requested !== resource || claims.resource !== resource) throw new errors.InvalidTarget('resource is not served here');
      if (spentJtis.has(claims.jti as string)) throw new errors.InvalidGrant('assertion replayed');
      spentJtis.add(claims.jti as string);
      const token = new provider.ClientCredentials({ client: ctx.oidc.client, scope: scope || undefined });
      token.setAudience(resource);
      if (dPoP) {
        await checkDpopReplay(provider, ctx, dPoP, ctx.oidc.client.clientId);
        token.setThumbprint('jkt', dPoP.thumbprint);
      }
      ctx.oidc.entity('ClientCredentials', token);
      const value = await token.save();
      subjects.set(value, claims.sub);
      ctx.body = { access_token: value, token_type: token.tokenType, expires_in: token.expiration, ...(scope ? { scope } : {}) };
    },
    ['assertion', 'resource', 'scope'],
  );

  // The provider's own events say how each token request ended.
  const proofOf = (ctx: OidcContext) => {
    const proof = ctx.get('DPoP');
    return { proof: proof !== '', nonce: proof !== '' && (JSON.parse(Buffer.from(proof.split('.')[1] ?? '', 'base64url').toString() || '{}') as { nonce?: string }).nonce !== undefined };
  };
  provider.on('grant.success', (ctx) => {
    const context = ctx as OidcContext;
    interop.grants.push({ status: 200, tokenType: (context.body as { token_type: string }).token_type, ...proofOf(context) });
  });
  provider.on('grant.error', (ctx, error) => {
    const { statusCode, error: code } = error as { statusCode: number; error: string };
    interop.grants.push({ status: statusCode, error: code, ...proofOf(ctx as OidcContext) });
  });
  asServer.on('request', provider.callback());

  rsServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void serveResource(req, res);
  });

  async function serveResource(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for await (const _chunk of req) void _chunk;
    const url = new URL(req.url ?? '/', rsOrigin);
    const answer = (status: number, headers: Record<string, string>, body: unknown) => {
      if (url.pathname.startsWith('/mcp')) interop.resourceRequests.push({ scheme: req.headers.authorization?.split(' ')[0], proof: req.headers.dpop !== undefined, status, path: url.pathname });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/oauth-protected-resource/mcp') return answer(200, {}, { resource, authorization_servers: [issuer], dpop_bound_access_tokens_required: true });
    if (url.pathname !== '/mcp') return answer(404, {}, { error: 'not_found' });
    const [scheme, value] = (req.headers.authorization ?? '').split(' ');
    const challenge = { 'www-authenticate': 'DPoP algs="ES256 ES384 RS256 PS256 EdDSA"' };
    if (scheme !== 'DPoP' || !value) return answer(401, challenge, { error: 'invalid_token' });
    const proof = await interop.resourceDpop.verify(req.headers.dpop, { method: req.method ?? 'GET', url: url.href, accessToken: value });
    if (isProofFailure(proof)) {
      const nonce: Record<string, string> = interop.resourceDpop.requireNonce ? { 'dpop-nonce': interop.resourceDpop.nonce } : {};
      return answer(401, { 'www-authenticate': `DPoP error="${proof.error}"`, ...nonce }, { error: proof.error });
    }
    // RFC 9449 §7.1: the token must be bound to the key of the proof.
    const token = await provider.ClientCredentials.find(value);
    if (!token || token.isExpired || token.aud !== resource || token.jkt !== proof.jkt) return answer(401, { 'www-authenticate': 'DPoP error="invalid_token"' }, { error: 'invalid_token' });
    return answer(200, {}, { sub: subjects.get(value), scope: token.scope ?? null });
  }

  return interop;
}
