/**
 * Bounded state and the behaviour a new user trips over: learned resources stay bounded and are
 * found by path segment; a server that cannot be learned gets its 401 back with a reason; a 401
 * outside the configured resource is explained; scopes_supported is read with a pinned issuer.
 * Real loopback servers throughout.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessOptions } from '../src/index.js';
import { Discovery } from '../src/oauth/discovery.js';
import { resolveOptions } from '../src/options/resolve.js';
import { MAX_LEARNED_RESOURCES, ResourceRegistry } from '../src/engine/resources.js';
import { NO_RETRY } from '../src/oauth/retry.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { sendText, startHttpServer, type StartedServer } from './servers/http-util.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
const extra: StartedServer[] = [];
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
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

describe('scopes_supported with resource and client.issuer both set', () => {
  it('is read alongside the authorization server metadata, so the requested scope does not change when the issuer is pinned', async () => {
    const scoped = await startStack({ mcp: { scopesSupported: ['files:read', 'files:write'] } });
    try {
      const pinned = stackOptions(scoped, {
        resource: scoped.mcp.resource,
        client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: scoped.as.issuer },
      });
      expect((await withCrossAppAccess(fetch, pinned)(scoped.mcp.url, listToolsInit())).status).toBe(200);
      const exchange = scoped.idp.requests.find((r) => r.method === 'POST');
      const grant = scoped.as.requests.find((r) => r.method === 'POST');
      expect(exchange?.form.scope).toBe('files:read files:write');
      expect(grant?.form.scope).toBe('files:read files:write');
    } finally {
      await scoped.close();
    }
  });

  it('an absent protected-resource metadata document does not stop a pinned configuration', async () => {
    const bare = await startStack({ mcp: { prm: 'header-only' } });
    try {
      const pinned = stackOptions(bare, {
        resource: bare.mcp.resource,
        client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: bare.as.issuer },
      });
      expect((await withCrossAppAccess(fetch, pinned)(bare.mcp.url, listToolsInit())).status).toBe(200);
      expect(bare.mcp.counters.unauthorized).toBe(0);
    } finally {
      await bare.close();
    }
  });
});

describe('the warm path keeps the token inside the resource whatever the caller writes for redirect', () => {
  it.each([
    ['no redirect member', {}],
    ['redirect: undefined', { redirect: undefined }],
    ["redirect: 'follow'", { redirect: 'follow' as const }],
  ])('%s: a same-origin redirect out of the resource, on a warm token, carries no Authorization', async (_label, extra) => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200); // warm from here on
    stack.mcp.override = (req) => (req.path === '/mcp' ? { status: 302, headers: { location: '/public' }, body: '' } : undefined);
    const response = await authedFetch(stack.mcp.url, { ...listToolsInit(), ...extra });
    expect(response.status).toBe(200);
    expect(response.url).toBe(`${stack.mcp.origin}/public`);
    const atPublic = stack.mcp.requests.filter((r) => r.path === '/public');
    expect(atPublic).toHaveLength(1);
    expect(atPublic[0]?.authorization).toBeUndefined();
  });
});

describe('a caller that changes its init after the call', () => {
  it('adding redirect: follow while the wrapper re-acquires after a 401 does not let the retry take the token out of the resource', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200); // warm
    let n = 0;
    stack.mcp.override = (req) => {
      if (req.path !== '/mcp') return undefined;
      n++;
      const headers: Record<string, string> = n === 1 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : { location: '/public' };
      return { status: n === 1 ? 401 : 302, headers, body: '' };
    };
    const init: RequestInit = listToolsInit();
    const pending = authedFetch(stack.mcp.url, init);
    init.redirect = 'follow'; // after the call: the retry must not read it
    const response = await pending;
    expect(response.status).toBe(200);
    const atPublic = stack.mcp.requests.filter((r) => r.path === '/public');
    expect(atPublic).toHaveLength(1);
    expect(atPublic[0]?.authorization).toBeUndefined();
  });
});
