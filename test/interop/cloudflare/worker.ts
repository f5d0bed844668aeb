/**
 * A Cloudflare Worker under test: `@cloudflare/workers-oauth-provider`'s OAuthProvider as the MCP
 * server's authorization server with Enterprise-Managed Authorization (it redeems ID-JAGs with the
 * RFC 7523 jwt-bearer grant), protecting a minimal JSON-RPC MCP endpoint at /mcp.
 *
 * Configured at `wrangler dev` time with `--var`: IDP_ISSUER and IDP_JWKS_URI (the trusted
 * enterprise IdP, https only), ADMIN_TOKEN (guards /admin, the tests' hooks to create clients, revoke
 * grants and read the token endpoint's log). The resource is this Worker's origin + /mcp, taken from
 * the first request (wrangler dev picks the port). Nothing here is a mock: every token request is
 * answered by the provider itself.
 */
import { OAuthProvider, insufficientScope, type OAuthHelpers, type OAuthResourceAuth } from '@cloudflare/workers-oauth-provider';

interface Env {
  OAUTH_KV: unknown;
  OAUTH_PROVIDER: OAuthHelpers;
  IDP_ISSUER: string;
  IDP_JWKS_URI: string;
  ADMIN_TOKEN: string;
}

interface Props {
  sub: string;
}

/** What the token endpoint answered, without any credential: the tests count and inspect these. */
interface TokenLogEntry {
  grantType: string | null;
  /** How the client authenticated, read from the request's shape (RFC 6749 §2.3.1). */
  authMethod: 'client_secret_basic' | 'client_secret_post' | 'none';
  clientId: string | null;
  status: number;
  error?: string;
  /** The provider's `onError` internal reason (never sent to the client). */
  reason?: string;
}

const tokenLog: TokenLogEntry[] = [];
let lastInternal: { category: string; reason: string } | undefined;
let apiRequests = 0;
/** Requests to /mcp without credentials (answered 401 by the provider). */
let unauthenticated = 0;

const MCP_PROTOCOL_VERSION = '2025-06-18';

/** The protected MCP endpoint: JSON-RPC 2.0 over POST (MCP Streamable HTTP, JSON responses only). */
const mcpApi = {
  async fetch(request: Request, _env: Env, ctx: { props: Props; auth: OAuthResourceAuth }): Promise<Response> {
    apiRequests++;
    if (request.method !== 'POST') return new Response(null, { status: 405, headers: { allow: 'POST' } });
    const message = (await request.json()) as { id?: number | string; method?: string; params?: { name?: string } };
    const reply = (result: unknown) => Response.json({ jsonrpc: '2.0', id: message.id ?? null, result });
    switch (message.method) {
      case 'initialize':
        return reply({ protocolVersion: MCP_PROTOCOL_VERSION, capabilities: { tools: {} }, serverInfo: { name: 'cf-interop', version: '1.0.0' } });
      case 'tools/list':
        return reply({ tools: [{ name: 'whoami', inputSchema: { type: 'object' } }, { name: 'write', inputSchema: { type: 'object' } }] });
      case 'tools/call': {
        // Writing needs mcp:write: RFC 6750 §3.1 insufficient_scope, naming every scope needed (MCP step-up).
        if (message.params?.name === 'write' && !ctx.auth.scope.includes('mcp:write')) {
          return insufficientScope(ctx.auth, ['mcp:read', 'mcp:write']);
        }
        return reply({ content: [{ type: 'text', text: JSON.stringify({ sub: ctx.props.sub, userId: ctx.auth.userId, scope: ctx.auth.scope }) }] });
      }
      default:
        return Response.json({ jsonrpc: '2.0', id: message.id ?? null, error: { code: -32601, message: 'Method not found' } });
    }
  },
};

/** Test hooks, behind a bearer ADMIN_TOKEN: create clients, revoke grants, read the token log. */
const admin = {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (!url.pathname.startsWith('/admin/')) return new Response('not found', { status: 404 });
    if (request.headers.get('authorization') !== `Bearer ${env.ADMIN_TOKEN}`) return new Response('forbidden', { status: 403 });
    const helpers = env.OAUTH_PROVIDER;
    switch (`${request.method} ${url.pathname}`) {
      case 'POST /admin/clients': {
        const { authMethod } = (await request.json()) as { authMethod: string };
        const client = await helpers.createClient({
          clientName: `interop ${authMethod}`,
          tokenEndpointAuthMethod: authMethod,
          // Required by createClient even for a client that never uses the authorization endpoint.
          redirectUris: ['https://client.invalid/callback'],
          grantTypes: ['urn:ietf:params:oauth:grant-type:jwt-bearer'],
          responseTypes: [],
        });
        return Response.json({ clientId: client.clientId, clientSecret: client.clientSecret });
      }
      case 'POST /admin/revoke': {
        const { userId } = (await request.json()) as { userId: string };
        const grants = await helpers.listUserGrants(userId);
        for (const grant of grants.items) await helpers.revokeGrant(grant.id, userId);
        return Response.json({ revoked: grants.items.length });
      }
      case 'GET /admin/log':
        return Response.json({ token: tokenLog, apiRequests, unauthenticated });
      case 'POST /admin/log/reset':
        tokenLog.length = 0;
        apiRequests = 0;
        unauthenticated = 0;
        return Response.json({ ok: true });
      default:
        return new Response('not found', { status: 404 });
    }
  },
};

let provider: OAuthProvider<Env> | undefined;

function providerFor(origin: string): OAuthProvider<Env> {
  provider ??= new OAuthProvider<Env>({
    apiRoute: '/mcp',
    apiHandler: mcpApi as never,
    defaultHandler: admin as never,
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/oauth/token',
    scopesSupported: ['mcp:read', 'mcp:write'],
    resourceMetadata: { resource: `${origin}/mcp`, resource_name: 'cf-interop' },
    requiredScopes: ['mcp:read'],
    onError({ internal }) {
      lastInternal = internal;
    },
    enterpriseManagedAuthorization: {
      // The provider accepts only https issuers and JWKS URIs.
      trustedIssuers: async ({ iss, env }) =>
        iss === env.IDP_ISSUER ? { issuer: iss, jwksUri: env.IDP_JWKS_URI, algorithms: ['ES256'] } : null,
      mapClaims: async ({ claims, requestedScope }) => ({
        // Opaque tokens use ':' as a separator, so the subject is encoded.
        userId: `ent-${encodeURIComponent(claims.sub)}`,
        scope: requestedScope,
        metadata: { iss: claims.iss },
        props: { sub: claims.sub },
      }),
    },
  });
  return provider;
}

/** The client id of a Basic header (RFC 6749 §2.3.1: form-encoded id, then `:`), never its secret. */
function basicClientId(request: Request): string | null {
  const header = request.headers.get('authorization');
  if (!header?.startsWith('Basic ')) return null;
  try {
    const decoded = atob(header.slice(6));
    return decodeURIComponent(decoded.slice(0, decoded.indexOf(':')));
  } catch {
    return null;
  }
}

function authMethodOf(request: Request, form: URLSearchParams): TokenLogEntry['authMethod'] {
  if (request.headers.get('authorization')?.startsWith('Basic ')) return 'client_secret_basic';
  if (form.has('client_secret')) return 'client_secret_post';
  return 'none';
}

export default {
  async fetch(request: Request, env: Env, ctx: unknown): Promise<Response> {
    const oauth = providerFor(new URL(request.url).origin) as unknown as { fetch(r: Request, e: Env, c: unknown): Promise<Response> };
    const path = new URL(request.url).pathname;
    if (path.startsWith('/mcp') && !request.headers.has('authorization')) unauthenticated++;
    if (request.method === 'POST' && path === '/oauth/token') {
      const form = new URLSearchParams(await request.clone().text());
      lastInternal = undefined;
      const response = await oauth.fetch(request, env, ctx);
      const body = (await response.clone().json().catch(() => ({}))) as { error?: string };
      // Set by onError during the call above (TypeScript cannot see that).
      const internal = lastInternal as { category: string; reason: string } | undefined;
      tokenLog.push({
        grantType: form.get('grant_type'),
        authMethod: authMethodOf(request, form),
        clientId: form.get('client_id') ?? basicClientId(request),
        status: response.status,
        ...(body.error ? { error: body.error } : {}),
        ...(internal ? { reason: `${internal.category}/${internal.reason}` } : {}),
      });
      return response;
    }
    return oauth.fetch(request, env, ctx);
  },
};
