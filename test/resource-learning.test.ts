/**
 * Which resource a URL belongs to, learned from 401 challenges and protected-resource metadata
 * (RFC 9728; MCP authorization, "Authorization Server Binding"): learned resources stay bounded and
 * are found by path segment, the most specific wins, a server that cannot be learned (or may never
 * get a token) gets its 401 back with a reason, a 401 outside the configured resource is explained,
 * and a server whose resource moves is followed once. Real loopback servers throughout; nock only
 * for a non-loopback host.
 */
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessOptions } from '../src/index.js';
import { Discovery } from '../src/oauth/discovery.js';
import { resolveOptions } from '../src/options/resolve.js';
import { MAX_LEARNED_RESOURCES, ResourceRegistry } from '../src/engine/resources.js';
import { NO_RETRY } from '../src/oauth/retry.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { sendText, startHttpServer, type StartedServer } from './servers/http-util.js';
import { eventLoopTurns } from './helpers/unhandled.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
const extra: StartedServer[] = [];
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  nock.cleanAll();
  nock.enableNetConnect();
  await Promise.all([stack.close(), ...extra.splice(0).map((s) => s.close())]);
});

const options = (overrides: Partial<CrossAppAccessOptions> = {}) => stackOptions(stack, overrides);

function diagnosticsOf(events: CrossAppAccessEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'diagnostic' ? [e.message] : []));
}

async function serve(handler: Parameters<typeof startHttpServer>[0]): Promise<StartedServer> {
  const server = await startHttpServer(handler);
  extra.push(server);
  return server;
}

describe('learned resources are bounded and found by path segment', () => {
  function registryOverRealAs() {
    const resolved = resolveOptions(options());
    const discovery = new Discovery(fetch, 5_000, () => undefined, Date.now, NO_RETRY);
    return new ResourceRegistry(resolved, discovery);
  }
  const prm = (resource: string) => ({ resource, authorizationServers: [stack.as.issuer], scopesSupported: undefined, url: `${resource}/prm` });

  it(`keeps at most ${MAX_LEARNED_RESOURCES} resources, dropping the least recently used`, async () => {
    const registry = registryOverRealAs();
    const origin = 'http://127.0.0.1:9';
    await registry.fromMetadata(prm(`${origin}/r/0`), undefined);
    for (let i = 1; i <= MAX_LEARNED_RESOURCES; i++) {
      await registry.fromMetadata(prm(`${origin}/r/${i}`), undefined);
      // r/0 is used all along, so it is never the least recently used.
      expect(registry.find(origin, '/r/0/x')?.resource).toBe(`${origin}/r/0`);
    }
    expect(registry.size).toBe(MAX_LEARNED_RESOURCES);
    expect(registry.find(origin, '/r/1')).toBeUndefined();
    expect(registry.find(origin, `/r/${MAX_LEARNED_RESOURCES}`)?.resource).toBe(`${origin}/r/${MAX_LEARNED_RESOURCES}`);
    // The authorization server's metadata was fetched once for all of them.
    expect(stack.as.counters.metadata).toBe(1);
  });

  it('the most specific resource wins, at `/` boundaries only, on the same origin only', async () => {
    const registry = registryOverRealAs();
    const origin = 'http://127.0.0.1:9';
    for (const path of ['', '/api', '/api/mcp/', '/api/mcp/deep']) await registry.fromMetadata(prm(`${origin}${path}`), undefined);
    const found = (path: string, at = origin) => registry.find(at, path)?.resource.slice(origin.length);
    expect(found('/api/mcp/deep/x')).toBe('/api/mcp/deep');
    expect(found('/api/mcp/deeper')).toBe('/api/mcp/');
    expect(found('/api/mcp')).toBe('/api/mcp/');
    expect(found('/api/mcp/')).toBe('/api/mcp/');
    expect(found('/api2')).toBe('');
    expect(found('/')).toBe('');
    expect(found('/api', 'http://127.0.0.1:10')).toBeUndefined();
  });
});

describe('nested resources on one origin (RFC 9728 §3.3)', () => {
  /** One origin, two resources: `/` (for /api) and `/team/mcp`, each with its own metadata. */
  async function nestedServer() {
    let origin = '';
    const seen: Array<{ path: string; resource?: string }> = [];
    const server = await startHttpServer((req, res) => {
      const path = req.url ?? '/';
      const prm = (resource: string) => ({ resource, authorization_servers: [stack.as.issuer] });
      if (path === '/.well-known/oauth-protected-resource') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(prm(`${origin}/`)));
      if (path === '/.well-known/oauth-protected-resource/team/mcp') {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(prm(`${origin}/team/mcp`)));
      }
      const wanted = path.startsWith('/team/mcp') ? `${origin}/team/mcp` : `${origin}/`;
      const metadata = path.startsWith('/team/mcp') ? `${origin}/.well-known/oauth-protected-resource/team/mcp` : `${origin}/.well-known/oauth-protected-resource`;
      const token = (req.headers.authorization ?? '').replace('Bearer ', '');
      const info = stack.as.verifyAccessToken(token);
      seen.push({ path, resource: info?.resource });
      if (info?.resource !== wanted) return void res.writeHead(401, { 'www-authenticate': `Bearer error="invalid_token", resource_metadata="${metadata}"` }).end();
      res.writeHead(200).end('ok');
    });
    origin = server.url;
    stack.as.allowedResources = [`${origin}/`, `${origin}/team/mcp`];
    return { server, origin, seen };
  }

  it('a URL inside a more specific resource learns it from the 401, and later requests use the most specific token', async () => {
    const { server, origin, seen } = await nestedServer();
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      expect((await authedFetch(`${origin}/api`)).status).toBe(200);
      expect((await authedFetch(`${origin}/team/mcp`)).status).toBe(200);
      expect((await authedFetch(`${origin}/team/mcp`)).status).toBe(200);
      expect((await authedFetch(`${origin}/api`)).status).toBe(200);
      expect(stack.idp.counters.exchange).toBe(2); // one token per resource, no churn
      // The probe of /api, then /team/mcp once with the / token (its 401 points elsewhere), and no
      // other round trip: later requests pick the most specific resource straight away.
      expect(seen).toEqual([
        { path: '/api', resource: undefined },
        { path: '/api', resource: `${origin}/` },
        { path: '/team/mcp', resource: `${origin}/` },
        { path: '/team/mcp', resource: `${origin}/team/mcp` },
        { path: '/team/mcp', resource: `${origin}/team/mcp` },
        { path: '/api', resource: `${origin}/` },
      ]);
    } finally {
      await server.close();
    }
  });
});

describe('a server whose resource moves', () => {
  it('a server whose resource became less specific (/mcp → /) is followed once, and the stale resource is forgotten', async () => {
    let origin = '';
    let movedToRoot = false;
    const sends: string[] = [];
    const server = await startHttpServer((req, res) => {
      const path = req.url ?? '/';
      const json = (body: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (path === '/.well-known/oauth-protected-resource/mcp') return json({ resource: `${origin}/mcp`, authorization_servers: [stack.as.issuer] });
      if (path === '/.well-known/oauth-protected-resource') return json({ resource: `${origin}/`, authorization_servers: [stack.as.issuer] });
      const wanted = movedToRoot ? `${origin}/` : `${origin}/mcp`;
      const info = stack.as.verifyAccessToken((req.headers.authorization ?? '').replace('Bearer ', ''));
      sends.push(info?.resource ?? 'none');
      if (info?.resource === wanted) return void res.writeHead(200).end('ok');
      const metadata = movedToRoot ? `${origin}/.well-known/oauth-protected-resource` : `${origin}/.well-known/oauth-protected-resource/mcp`;
      res.writeHead(401, { 'www-authenticate': `Bearer error="invalid_token", resource_metadata="${metadata}"` }).end();
    });
    origin = server.url;
    stack.as.allowedResources = [`${origin}/mcp`, `${origin}/`];
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      expect((await authedFetch(`${origin}/mcp`)).status).toBe(200);
      movedToRoot = true;
      sends.length = 0;
      expect((await authedFetch(`${origin}/mcp`)).status).toBe(200);
      expect((await authedFetch(`${origin}/mcp`)).status).toBe(200);
      expect(sends).toEqual([`${origin}/mcp`, `${origin}/`, `${origin}/`]); // one 401, then straight to the new resource
    } finally {
      await server.close();
    }
  });
});

describe('a server that cannot be learned gets its 401 back (no resource configured)', () => {
  async function foreignApi(wellKnown: (res: import('node:http').ServerResponse) => void): Promise<StartedServer> {
    return serve((req, res) => {
      if (req.url?.startsWith('/.well-known/')) return wellKnown(res);
      sendText(res, 401, 'who are you?', { 'www-authenticate': 'Bearer realm="foreign"' });
    });
  }

  it.each([
    ['answers 503', (res: import('node:http').ServerResponse) => sendText(res, 503, 'down'), 'http_error'],
    ['answers invalid JSON', (res: import('node:http').ServerResponse) => sendText(res, 200, '{"resource":', { 'content-type': 'application/json' }), 'metadata_not_found'],
    ['answers JSON that is not RFC 9728 metadata', (res: import('node:http').ServerResponse) => sendText(res, 200, '{"resource":"x"}', { 'content-type': 'application/json' }), 'invalid_metadata'],
  ])('a foreign API whose well-known metadata %s: the 401 as it came, and a diagnostic', async (_label, wellKnown, code) => {
    const api = await foreignApi(wellKnown);
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ retry: { baseDelay: 0 }, onEvent: (e) => events.push(e) }));
    const response = await authedFetch(`${api.url}/v1/things`);
    expect(response.status).toBe(401);
    expect(await response.text()).toBe('who are you?');
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="foreign"');
    expect(diagnosticsOf(events).join('\n')).toContain(`(${code}:`);
    expect(events.filter((e) => e.type === 'failure')).toEqual([]);
    expect(stack.idp.counters.exchange + stack.as.counters.grant).toBe(0);
  });
});

describe('a 401 from a server that may not be given a token comes back as it came', () => {
  it('a Bearer 401 from a server with no protected-resource metadata does not touch the IdP', async () => {
    const server = await startHttpServer((_req, res) => void res.writeHead(401, { 'www-authenticate': 'Bearer realm="elsewhere"' }).end());
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      expect((await authedFetch(`${server.url}/api`)).status).toBe(401);
      expect(stack.idp.counters.metadata).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('a plain-http non-loopback server answering 401 Bearer gets its 401 back, with no discovery', async () => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    const scope = nock('http://api.example.test')
      .get('/mcp')
      .reply(401, 'login', { 'www-authenticate': 'Bearer resource_metadata="http://api.example.test/.well-known/oauth-protected-resource"' });
    const authedFetch = withCrossAppAccess(fetch, options());
    const response = await authedFetch('http://api.example.test/mcp');
    expect(response.status).toBe(401);
    expect(await response.text()).toBe('login');
    expect(scope.isDone()).toBe(true);
    expect(stack.idp.counters.exchange).toBe(0);
  });
});

describe('a 401 outside the configured resource is explained', () => {
  it('localhost against 127.0.0.1: a resource_mismatch error naming the URL to call; no token is sent', async () => {
    const configured = stack.mcp.resource.replace('127.0.0.1', 'localhost');
    const authedFetch = withCrossAppAccess(fetch, options({ resource: configured }));
    for (let i = 0; i < 2; i++) {
      const error = await authedFetch(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CrossAppAccessError);
      expect(error).toMatchObject({ code: 'resource_mismatch', stage: 'request', status: 401 });
      expect((error as Error).message).toContain(`Call ${configured}`);
      expect((error as Error).message).toContain(stack.mcp.url);
    }
    expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('a path outside the resource: the diagnostic says so; a 401 without a Bearer challenge says nothing', async () => {
    const events: CrossAppAccessEvent[] = [];
    const api = await serve((req, res) => sendText(res, 401, 'no', req.url === '/other' ? { 'www-authenticate': 'Bearer' } : {}));
    const authedFetch = withCrossAppAccess(fetch, options({ resource: `${api.url}/mcp`, onEvent: (e) => events.push(e) }));
    expect((await authedFetch(`${api.url}/plain`)).status).toBe(401);
    expect(diagnosticsOf(events)).toEqual([]);
    expect((await authedFetch(`${api.url}/other`)).status).toBe(401);
    expect(diagnosticsOf(events)).toHaveLength(1);
    expect(diagnosticsOf(events)[0]).toContain('its path is not at or below /mcp');
  });
});

describe('first-use binding (MCP authorization spec, "Authorization Server Binding")', () => {
  it('a server whose AS has no valid metadata does not lock the credentials to that AS', async () => {
    const broken = await startStack({ mcp: { prmOverrides: { authorization_servers: ['http://127.0.0.1:1'] } } });
    try {
      const diagnostics: string[] = [];
      const authedFetch = withCrossAppAccess(fetch, options({ onEvent: (e) => e.type === 'diagnostic' && diagnostics.push(e.message) }));
      // Not known to be ours (no `resource`): its 401 comes back as it came, with the reason.
      expect((await authedFetch(broken.mcp.url, listToolsInit())).status).toBe(401);
      expect(diagnostics.join('\n')).toContain('(network_error:');
      expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    } finally {
      await broken.close();
    }
  });

  it('once bound, a resource guarded by another AS gets issuer_not_allowed and nothing is sent there', async () => {
    const other = await startStack();
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
      // Without `resource`, another AS's server is not ours: its 401 comes back untouched.
      expect((await authedFetch(other.mcp.url, listToolsInit())).status).toBe(401);
      expect(other.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
      expect(other.as.counters.grant).toBe(0);
      expect(other.idp.counters.exchange).toBe(0);
      expect(stack.idp.counters.exchange).toBe(1);
    } finally {
      await other.close();
    }
  });
});

describe('a 401 on a token the server refuses', () => {
  it('a 401 returned to the caller starts no acquisition nobody waits for', async () => {
    stack.mcp.override = (req) => (req.headers.authorization ? { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: '' } : undefined);
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    for (let i = 0; i < 5; i++) expect((await authedFetch(stack.mcp.url, listToolsInit(i))).status).toBe(401);
    await eventLoopTurns(5);
    expect(stack.idp.counters.exchange).toBe(6); // the first token, then one re-acquisition per request
  });
});
