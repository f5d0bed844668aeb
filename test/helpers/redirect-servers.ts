/**
 * Loopback servers for redirect and request-merge tests: a recorder that logs every request (method,
 * path, headers, body bytes) and answers through a mutable route; a protected resource built on it
 * that verifies bearers with the test authorization server; and an attacker (another origin that
 * answers 401 naming its own protected-resource metadata, plus an authorization server of its own).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Stack } from '../servers/stack.js';
import { DEFAULT_AS_CLIENT } from '../servers/stack.js';
import { startAuthorizationServer, type AuthorizationServer } from '../servers/authorization-server.js';
import { startHttpServer } from '../servers/http-util.js';

export interface Hit {
  method: string;
  /** Pathname only. */
  path: string;
  headers: IncomingHttpHeaders;
  authorization: string | undefined;
  bytes: Buffer;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** Decides an answer; undefined falls through to the server's default. */
export type Route = (hit: Hit) => Reply | undefined;

export interface Recorder {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly host: string;
  readonly hits: Hit[];
  route: Route;
  /** Hits at exactly this pathname. */
  at(path: string): Hit[];
  close(): Promise<void>;
}

async function rawBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Records every request and answers with `route` (default: 200 `ok`). */
export async function startRecorder(route: Route = () => undefined): Promise<Recorder> {
  const hits: Hit[] = [];
  const recorder: Recorder = {
    url: '',
    host: '',
    hits,
    route,
    at: (path) => hits.filter((h) => h.path === path),
    close: async () => {},
  };
  const started = await startHttpServer(async (req, res) => {
    const bytes = await rawBody(req);
    const hit: Hit = {
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://127.0.0.1').pathname,
      headers: { ...req.headers },
      authorization: req.headers.authorization,
      bytes,
    };
    hits.push(hit);
    const reply = recorder.route(hit) ?? { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };
    const body = reply.body;
    res.writeHead(reply.status, { 'content-length': Buffer.byteLength(body), ...reply.headers });
    res.end(body);
  });
  Object.assign(recorder, { url: started.url, host: `127.0.0.1:${started.port}`, close: started.close });
  return recorder;
}

export interface ProtectedResource extends Recorder {
  /** `${url}/mcp`: the resource identifier. */
  readonly resource: string;
  /** Mutable: routes tried before the defaults, told whether the hit carried a valid token for this resource. */
  routes: (hit: Hit, authorized: boolean) => Reply | undefined;
  /** Mutable: return true to refuse (401) a token that would otherwise be valid. */
  rejectToken: ((token: string) => boolean) | undefined;
  /** Hits inside the resource path (`/mcp`, `/mcp/...`). */
  inResource(): Hit[];
}

/**
 * A resource at `/mcp` whose tokens come from `stack.as` (added to its allowed resources), with its
 * RFC 9728 metadata at the path-aware well-known URL. Defaults: inside `/mcp`, 401 with a challenge
 * without a valid token, else 200 `{ path, method, bytes }`; elsewhere 200 `outside`.
 */
export async function startProtectedResource(stack: Stack): Promise<ProtectedResource> {
  const base = await startRecorder();
  const resource = `${base.url}/mcp`;
  const prmUrl = `${base.url}/.well-known/oauth-protected-resource/mcp`;
  stack.as.allowedResources = [...(stack.as.allowedResources ?? []), resource];
  const server = Object.assign(base, {
    resource,
    routes: (() => undefined) as ProtectedResource['routes'],
    rejectToken: undefined as ProtectedResource['rejectToken'],
    inResource: () => base.hits.filter((h) => h.path === '/mcp' || h.path.startsWith('/mcp/')),
  });
  server.route = (hit) => {
    if (hit.path === '/.well-known/oauth-protected-resource/mcp') {
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource, authorization_servers: [stack.as.issuer] }) };
    }
    const token = /^Bearer (.+)$/.exec(hit.authorization ?? '')?.[1];
    const info = token === undefined || server.rejectToken?.(token) ? undefined : stack.as.verifyAccessToken(token);
    const authorized = info !== undefined && info.resource === resource;
    const routed = server.routes(hit, authorized);
    if (routed) return routed;
    if (hit.path === '/mcp' || hit.path.startsWith('/mcp/')) {
      if (!authorized) return { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${prmUrl}"` }, body: 'unauthorized' };
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: hit.path, method: hit.method, bytes: hit.bytes.length }) };
    }
    return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'outside' };
  };
  return server;
}

export interface Attacker {
  /** The origin a redirect lands on: 401 everywhere, naming `${site.url}/prm`. */
  site: Recorder;
  /** The attacker's authorization server: real RFC 8414 metadata and token endpoint, every request recorded. */
  as: AuthorizationServer;
  /** The exact 401 the site answers with. */
  readonly challenge: string;
  readonly body: string;
  close(): Promise<void>;
}

/**
 * Another origin that answers 401 with a challenge naming its own protected-resource metadata, which
 * claims `claimedResource` (the real one) and the attacker's authorization server. The attacker AS
 * trusts the real IdP and knows the real client, so a client fooled by it would go all the way.
 */
export async function startAttacker(stack: Stack, claimedResource: string): Promise<Attacker> {
  const as = await startAuthorizationServer({
    clients: [DEFAULT_AS_CLIENT],
    trustedIdp: { issuer: stack.idp.issuer, publicKey: stack.idp.publicKey },
  });
  const body = 'attacker says: authenticate with me';
  let challenge = '';
  const site = await startRecorder((hit): Reply => {
    if (hit.path === '/prm') {
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource: claimedResource, authorization_servers: [as.issuer] }) };
    }
    return { status: 401, headers: { 'www-authenticate': challenge, 'content-type': 'text/plain', 'x-attacker': 'yes' }, body };
  });
  challenge = `Bearer resource_metadata="${site.url}/prm"`;
  return {
    site,
    as,
    challenge,
    body,
    close: async () => {
      await Promise.all([site.close(), as.close()]);
    },
  };
}
