/**
 * A protected resource on loopback (`/mcp` and below) that accepts the test authorization server's
 * tokens: DPoP-bound ones only as `Authorization: DPoP` with a proof verified by `jose` (RFC 9449 §7;
 * `dpop.requireNonce` demands the server's nonce, §9), unbound ones as Bearer. Every request is
 * recorded; `redirects` sends chosen paths elsewhere.
 */
import type { IncomingMessage } from 'node:http';
import { createDpopVerifier, isProofFailure, type DpopVerifier } from '../../src/cli/dev/servers/dpop.js';
import type { AuthorizationServer } from '../servers/authorization-server.js';
import { startHttpServer } from '../servers/http-util.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from '../servers/stack.js';
import type { CrossAppAccessEngineOptions } from '../../src/index.js';

export interface DpopHit {
  method: string;
  /** Full URL as received (path and query). */
  url: string;
  path: string;
  authorization: string | undefined;
  dpop: string | undefined;
  bytes: Buffer;
  /** The answer's status. */
  status: number;
}

export interface DpopResource {
  readonly origin: string;
  /** `${origin}/mcp`. */
  readonly resource: string;
  /** Every request received, metadata included. */
  readonly hits: DpopHit[];
  /** The requests to `/mcp` and below. */
  inResource(): DpopHit[];
  readonly dpop: DpopVerifier;
  /** Mutable: pathname → (status, Location) to answer with instead. */
  redirects: Map<string, { status: number; location: string }>;
  close(): Promise<void>;
}

async function rawBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startDpopResource(as: AuthorizationServer): Promise<DpopResource> {
  const server: DpopResource = { origin: '', resource: '', hits: [], inResource: () => server.hits.filter((h) => h.path === '/mcp' || h.path.startsWith('/mcp/')), dpop: createDpopVerifier(), redirects: new Map(), close: async () => {} };
  const failures = new Map<string, number>();
  const started = await startHttpServer(async (req, res) => {
    const bytes = await rawBody(req);
    const url = new URL(req.url ?? '/', server.origin);
    const hit: DpopHit = {
      method: req.method ?? 'GET',
      url: url.href,
      path: url.pathname,
      authorization: req.headers.authorization,
      dpop: req.headers.dpop as string | undefined,
      bytes,
      status: 0,
    };
    server.hits.push(hit);
    const answer = (status: number, headers: Record<string, string>, body: string) => {
      hit.status = status;
      res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body);
    };
    const redirect = server.redirects.get(url.pathname);
    if (redirect) return answer(redirect.status, { location: redirect.location }, '');
    if (url.pathname === '/.well-known/oauth-protected-resource/mcp') {
      // RFC 9728 §3.2.
      return answer(200, { 'content-type': 'application/json' }, JSON.stringify({ resource: server.resource, authorization_servers: [as.issuer], dpop_bound_access_tokens_required: true }));
    }
    if (url.pathname !== '/mcp' && !url.pathname.startsWith('/mcp/')) return answer(200, {}, 'outside');
    const [scheme, token] = (hit.authorization ?? '').split(' ');
    const info = token ? as.verifyAccessToken(token) : undefined;
    if (scheme === 'DPoP' && token) {
      const proof = await server.dpop.verify(req.headers.dpop, { method: hit.method, url: hit.url, accessToken: token });
      if (isProofFailure(proof)) {
        return answer(401, { 'www-authenticate': `DPoP error="${proof.error}"`, ...(server.dpop.requireNonce ? { 'dpop-nonce': server.dpop.nonce } : {}) }, proof.description);
      }
      if (!info || info.jkt !== proof.jkt || info.resource !== server.resource) return answer(401, { 'www-authenticate': 'DPoP error="invalid_token"' }, 'bad token');
    } else if (scheme !== 'Bearer' || !info || info.jkt !== undefined || info.resource !== server.resource) {
      return answer(401, { 'www-authenticate': 'DPoP algs="ES256", Bearer error="invalid_token"' }, 'unauthorized');
    }
    const nonce: Record<string, string> = server.dpop.requireNonce ? { 'dpop-nonce': server.dpop.nonce } : {};
    // `?fail=N&key=K`: the first N accepted requests for K get a 503; `?cc=V`: the 200 says Cache-Control V.
    const key = url.searchParams.get('key') ?? '';
    const failed = failures.get(key) ?? 0;
    if (failed < Number(url.searchParams.get('fail') ?? 0)) {
      failures.set(key, failed + 1);
      return answer(503, { 'retry-after': '0' }, 'busy');
    }
    const cc = url.searchParams.get('cc');
    return answer(200, { 'content-type': 'application/json', ...nonce, ...(cc ? { 'cache-control': cc } : {}) }, JSON.stringify({ path: url.pathname, bytes: bytes.length, sub: info.sub }));
  });
  Object.assign(server, { origin: started.url, resource: `${started.url}/mcp`, close: started.close });
  as.allowedResources = [...(as.allowedResources ?? []), server.resource];
  return server;
}

/** A loopback stack and a DPoP resource accepting its AS's tokens; their `close` goes to `cleanups`. */
export async function startDpopStack(cleanups: (() => Promise<void>)[]): Promise<{ stack: Stack; rs: DpopResource }> {
  const stack = await startStack({ bindResource: false });
  cleanups.push(() => stack.close());
  const rs = await startDpopResource(stack.as);
  cleanups.push(() => rs.close());
  return { stack, rs };
}

/** Engine options for a DPoP engine (`dpop: true`, no retries) talking to `stack`'s IdP and AS for `rs`. */
export function dpopEngineOptions(stack: Stack, rs: DpopResource, more: Partial<CrossAppAccessEngineOptions> = {}): CrossAppAccessEngineOptions {
  return {
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer },
    resource: rs.resource,
    retry: false,
    dpop: true,
    ...more,
  };
}
