/**
 * Redirects against real loopback servers: a challenge that arrives through a
 * redirect is never learned from, and a request carrying our token follows a redirect with the token
 * only while the next URL is inside the resource. Every "other origin" is another loopback port.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withCrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessOptions, type FetchLike } from '../src/index.js';
import { startAttacker, startProtectedResource, startRecorder, type Attacker, type Hit, type ProtectedResource, type Recorder, type Reply } from './helpers/redirect-servers.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { startStack, type Stack, type StackOptions } from './servers/stack.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()));
});

async function stackWith(options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack(options);
  open.push(stack);
  return stack;
}
async function attackerFor(stack: Stack): Promise<Attacker> {
  const attacker = await startAttacker(stack, stack.mcp.resource);
  open.push(attacker);
  return attacker;
}
async function recorder(): Promise<Recorder> {
  const server = await startRecorder();
  open.push(server);
  return server;
}
async function resourceOn(stack: Stack): Promise<ProtectedResource> {
  const server = await startProtectedResource(stack);
  open.push(server);
  return server;
}

const redirect = (status: number, location: string): Reply => ({ status, headers: { location }, body: '' });

/** Diagnostics and every other event, for one wrapper. */
function eventLog() {
  const events: CrossAppAccessEvent[] = [];
  return {
    onEvent: (event: CrossAppAccessEvent) => events.push(event),
    diagnostics: () => events.flatMap((e) => (e.type === 'diagnostic' ? [e.message] : [])),
  };
}

/**
 * A `next` that follows redirects itself (with `redirect: 'manual'` underneath) and returns the final
 * answer re-wrapped, as some fetch libraries do: either flagged `redirected: true` with no URL, or
 * not flagged but with its final `url`.
 */
function selfFollowing(report: 'redirected' | 'url'): FetchLike {
  return async (url, init) => {
    let current = String(url);
    let hops = 0;
    let response = await fetch(current, { ...init, redirect: 'manual' });
    while ([301, 302, 303, 307, 308].includes(response.status) && response.headers.has('location') && hops < 20) {
      await response.body?.cancel();
      current = new URL(response.headers.get('location')!, current).href;
      hops++;
      const method = response.status === 303 ? 'GET' : init?.method;
      response = await fetch(current, { ...init, method, body: method === 'GET' ? null : init?.body, redirect: 'manual' });
    }
    const rewrapped = new Response(response.body, { status: response.status, statusText: response.statusText, headers: response.headers });
    if (report === 'redirected') Object.defineProperty(rewrapped, 'redirected', { value: hops > 0 });
    else Object.defineProperty(rewrapped, 'url', { value: current });
    return rewrapped;
  };
}

describe('a redirect on the first, unauthenticated request cannot choose the authorization server', () => {
  const modes = [
    { name: 'without resource', mcp: {}, withResource: false },
    { name: 'with resource, metadata only through the challenge', mcp: { prm: 'header-only' as const }, withResource: true },
  ];

  /**
   * `${mcp.url}/go` (inside the real MCP server) answers `status` to the attacker's origin, whose 401
   * names metadata claiming the real resource and the attacker's AS. Nothing must reach the attacker
   * AS or the IdP; the attacker's 401 comes back as it came; the real server still works afterwards.
   */
  async function attack(mode: (typeof modes)[number], status: number, next: FetchLike = fetch) {
    const stack = await stackWith({ mcp: mode.mcp });
    const attacker = await attackerFor(stack);
    stack.mcp.override = (req) => (req.path === '/mcp/go' ? redirect(status, `${attacker.site.url}/landing`) : undefined);
    const log = eventLog();
    const options: CrossAppAccessOptions = stackOptions(stack, { onEvent: log.onEvent, ...(mode.withResource ? { resource: stack.mcp.resource } : {}) });
    const authedFetch = withCrossAppAccess(next, options);

    const response = await authedFetch(`${stack.mcp.url}/go`, listToolsInit());
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(attacker.challenge);
    expect(response.headers.get('x-attacker')).toBe('yes');
    expect(await response.text()).toBe(attacker.body);

    // The attacker's AS heard nothing: no metadata request, no Basic credentials, no ID-JAG.
    expect(attacker.as.requests).toEqual([]);
    // Its metadata was never read; only the redirected request landed there, without a token.
    expect(attacker.site.at('/prm')).toEqual([]);
    expect(attacker.site.hits.map((h) => [h.path, h.authorization])).toEqual([['/landing', undefined]]);
    expect(stack.idp.counters.exchange).toBe(0);
    expect(stack.as.counters.grant).toBe(0);
    expect(log.diagnostics().join('\n')).toMatch(/redirect/i);

    // Nothing was learned: the real server still works, with credentials bound to the real AS.
    const normal = await authedFetch(stack.mcp.url, listToolsInit(2));
    expect(normal.status).toBe(200);
    expect(stack.as.counters.grant).toBe(1);
    expect(attacker.as.requests).toEqual([]);
    // Every token the real server ever saw was issued by the real AS for the real resource.
    const tokens = stack.mcp.requests.flatMap((r) => (r.authorization ? [r.authorization.replace(/^Bearer /, '')] : []));
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) expect(stack.as.verifyAccessToken(token)?.resource).toBe(stack.mcp.resource);
  }

  for (const mode of modes) {
    for (const status of [302, 307]) {
      it(`${mode.name}: ${status} to another origin whose 401 names an attacker AS is handed back unlearned`, async () => {
        await attack(mode, status);
      });
    }
    it(`${mode.name}: a next that follows redirects itself and reports redirected: true`, async () => {
      await attack(mode, 302, selfFollowing('redirected'));
    });
    it(`${mode.name}: a next that follows redirects itself and reports only the final url`, async () => {
      await attack(mode, 307, selfFollowing('url'));
    });
  }

  it('a same-origin redirect to another path that challenges is not learned either (the challenge is not the requested URL\'s)', async () => {
    const stack = await stackWith();
    const attacker = await attackerFor(stack);
    // /mcp/go → /elsewhere on the MCP server's own origin, which answers with the attacker's challenge.
    stack.mcp.override = (req) => {
      if (req.path === '/mcp/go') return redirect(302, '/elsewhere');
      if (req.path === '/elsewhere') return { status: 401, headers: { 'www-authenticate': attacker.challenge }, body: 'no' };
      return undefined;
    };
    const log = eventLog();
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { onEvent: log.onEvent }));
    const response = await authedFetch(`${stack.mcp.url}/go`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(attacker.challenge);
    expect(attacker.as.requests).toEqual([]);
    expect(attacker.site.hits).toEqual([]);
    expect(stack.idp.counters.exchange).toBe(0);
    expect(log.diagnostics().join('\n')).toMatch(/redirect/i);
  });
});

describe('a request carrying the token follows redirects only inside the resource', () => {
  let stack: Stack;
  let resource: ProtectedResource;
  let authedFetch: ReturnType<typeof withCrossAppAccess>;
  beforeEach(async () => {
    stack = await stackWith();
    resource = await resourceOn(stack);
    authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: resource.resource }));
  });

  const bearers = (hits: Hit[]) => hits.map((h) => h.authorization?.startsWith('Bearer ') ?? false);
  const post = (body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json', 'x-caller': 'kept' }, body });

  for (const status of [301, 302, 303, 307, 308]) {
    it(`a same-origin ${status} out of the resource: the target gets no Authorization, the caller gets its answer`, async () => {
      resource.routes = (hit, authorized) => {
        if (hit.path === '/mcp' && authorized) return redirect(status, '/admin/collect');
        if (hit.path === '/admin/collect') return { status: 200, headers: { 'x-collected': 'yes' }, body: 'collected' };
        return undefined;
      };
      const response = await authedFetch(resource.resource, post());
      expect(response.status).toBe(200);
      expect(response.headers.get('x-collected')).toBe('yes');
      expect(await response.text()).toBe('collected');
      const collected = resource.at('/admin/collect');
      expect(collected).toHaveLength(1);
      expect(collected[0]!.headers.authorization).toBeUndefined();
      // The caller's own headers still go (only Authorization is withheld).
      expect(collected[0]!.headers['x-caller']).toBe('kept');
      // The resource itself did get the token.
      expect(bearers(resource.at('/mcp'))).toEqual([true]);
    });
  }

  it('a redirect within the resource (/mcp → /mcp/v2) carries the token, and its answer is returned', async () => {
    resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(302, '/mcp/v2') : undefined);
    const response = await authedFetch(resource.resource);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ path: '/mcp/v2', method: 'GET', bytes: 0 });
    expect(bearers(resource.at('/mcp/v2'))).toEqual([true]);
    expect(resource.at('/mcp/v2')[0]!.authorization).toBe(resource.at('/mcp')[0]!.authorization);
  });

  it('in, then out (/mcp → /mcp/v2 → /admin/collect): the token stops at the resource boundary', async () => {
    resource.routes = (hit, authorized) => {
      if (hit.path === '/mcp' && authorized) return redirect(307, `${resource.url}/mcp/v2`);
      if (hit.path === '/mcp/v2' && authorized) return redirect(307, '/admin/collect');
      if (hit.path === '/admin/collect') return { status: 200, body: `collected ${hit.method} ${hit.bytes.toString()}` };
      return undefined;
    };
    const response = await authedFetch(resource.resource, post('payload'));
    expect(await response.text()).toBe('collected POST payload');
    expect(bearers(resource.at('/mcp'))).toEqual([true]);
    expect(bearers(resource.at('/mcp/v2'))).toEqual([true]);
    expect(resource.at('/admin/collect')[0]!.authorization).toBeUndefined();
  });

  it("redirect: 'manual' hands the 3xx back as it is (Location visible), and nothing is fetched at the target", async () => {
    resource.routes = (hit, authorized) => {
      if (hit.path === '/mcp' && authorized) return redirect(302, '/admin/collect');
      if (hit.path === '/mcp/v2') return { status: 200, body: 'v2' };
      return undefined;
    };
    const response = await authedFetch(resource.resource, { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/admin/collect');
    expect(resource.at('/admin/collect')).toEqual([]);
    // Also for a target inside the resource: 'manual' means the caller follows, not us.
    resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(307, '/mcp/v2') : undefined);
    const inside = await authedFetch(resource.resource, { redirect: 'manual' });
    expect(inside.status).toBe(307);
    expect(inside.headers.get('location')).toBe('/mcp/v2');
    expect(resource.at('/mcp/v2')).toEqual([]);
  });

  it("redirect: 'error' rejects with a TypeError, as fetch does, and nothing is fetched at the target", async () => {
    resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(302, '/admin/collect') : undefined);
    await expect(authedFetch(resource.resource, { redirect: 'error' })).rejects.toBeInstanceOf(TypeError);
    expect(bearers(resource.at('/mcp'))).toEqual([true]);
    expect(resource.at('/admin/collect')).toEqual([]);
    resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(307, '/mcp/v2') : undefined);
    await expect(authedFetch(resource.resource, { redirect: 'error' })).rejects.toBeInstanceOf(TypeError);
    expect(resource.at('/mcp/v2')).toEqual([]);
  });

  describe('inside the resource, method and body change exactly as fetch changes them (plain fetch is the oracle)', () => {
    for (const status of [301, 302, 303, 307, 308]) {
      it(`POST answered ${status} → /mcp/v2`, async () => {
        // The redirect does not depend on the token, so plain fetch meets the same one.
        resource.routes = (hit) => (hit.path === '/mcp/r' ? redirect(status, '/mcp/v2') : undefined);
        // A string body: Node 20's fetch cannot follow a 307/308 with a byte body (detached ArrayBuffer).
        const body = '{"x":"\u00fc\u0000\u00ff"}';
        const init = (): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
        await (await fetch(`${resource.url}/mcp/r`, init())).arrayBuffer();
        const [expected] = resource.at('/mcp/v2').splice(0);
        resource.hits.length = 0;

        const response = await authedFetch(`${resource.url}/mcp/r`, init());
        expect(response.status).toBe(200);
        const [actual, ...more] = resource.at('/mcp/v2');
        expect(more).toEqual([]);
        expect(actual!.authorization).toMatch(/^Bearer /);
        expect({ method: actual!.method, bytes: [...actual!.bytes], type: actual!.headers['content-type'] }).toEqual({
          method: expected!.method,
          bytes: [...expected!.bytes],
          type: expected!.headers['content-type'],
        });
        if (status === 303 || status === 301 || status === 302) {
          expect(actual!.method).toBe('GET');
          expect(actual!.bytes.length).toBe(0);
        } else {
          expect(actual!.method).toBe('POST');
          expect(actual!.bytes.toString('utf8')).toBe(body);
        }
      });
    }
  });

  const streamOf = (...chunks: string[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });

  for (const [kind, makeBody] of [
    ['Uint8Array', () => new Uint8Array([0, 1, 2, 0xfe, 0xff])],
    ['ReadableStream', () => streamOf('\u0000\u0001', '\u0002\u00fe')],
  ] as const) {
    it(`a 307 inside the resource sends a ${kind} body again, byte for byte, with the token`, async () => {
      resource.routes = (hit) => (hit.path === '/mcp' && hit.method === 'POST' && hit.authorization ? redirect(307, '/mcp/v2') : undefined);
      const body = makeBody();
      const expected = body instanceof Uint8Array ? [...body] : [...Buffer.from('\u0000\u0001\u0002\u00fe', 'utf8')];
      const response = await authedFetch(resource.resource, { method: 'POST', body, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(200);
      const [first, ...rest] = resource.at('/mcp/v2');
      expect(rest).toEqual([]);
      expect(first!.authorization).toBe(resource.at('/mcp')[0]!.authorization);
      expect([...first!.bytes]).toEqual(expected);
      expect([...resource.at('/mcp')[0]!.bytes]).toEqual(expected);
    });
  }

  it('a 307 for a stream body too large to keep rejects with a TypeError, as fetch does, and nothing is sent again', async () => {
    const small = withCrossAppAccess(fetch, stackOptions(stack, { resource: resource.resource, maxReplayBodyBytes: 4 }));
    resource.routes = (hit) => (hit.path === '/mcp' && hit.authorization ? redirect(307, '/mcp/v2') : undefined);
    await expect(small(resource.resource, { method: 'POST', body: streamOf('0123', '4567', '89'), duplex: 'half' } as RequestInit)).rejects.toBeInstanceOf(TypeError);
    expect(resource.at('/mcp').map((h) => h.bytes.toString())).toEqual(['0123456789']);
    expect(resource.at('/mcp/v2')).toEqual([]);
  });

  for (const status of [302, 307]) {
    it(`a cross-origin ${status} target never sees the token (nor any Authorization)`, async () => {
      const other = await recorder();
      resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(status, `${other.url}/collect`) : undefined);
      const response = await authedFetch(resource.resource, post('cross'));
      expect(await response.text()).toBe('ok');
      expect(other.hits).toHaveLength(1);
      expect(other.hits[0]!.authorization).toBeUndefined();
      expect(other.hits[0]!.headers['x-caller']).toBe('kept');
      if (status === 307) expect(other.hits[0]!.bytes.toString()).toBe('cross');
    });
  }

  it('a cross-origin hop that comes back to the resource origin outside the resource carries no token either', async () => {
    const other = await recorder();
    other.route = () => redirect(302, `${resource.url}/admin/collect`);
    resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(302, `${other.url}/bounce`) : undefined);
    const response = await authedFetch(resource.resource);
    expect(await response.text()).toBe('outside');
    expect(other.hits[0]!.authorization).toBeUndefined();
    expect(resource.at('/admin/collect')[0]!.authorization).toBeUndefined();
  });

  it('a redirect loop inside the resource ends with a TypeError after as many requests as fetch makes, not a hang', async () => {
    resource.routes = (hit) => (hit.path === '/mcp/loop' ? redirect(302, '/mcp/loop') : undefined);
    await expect(fetch(`${resource.url}/mcp/loop`)).rejects.toBeInstanceOf(TypeError);
    const plainCount = resource.at('/mcp/loop').length;
    expect(plainCount).toBe(21); // the first request and 20 redirects
    resource.hits.length = 0;
    await expect(authedFetch(`${resource.url}/mcp/loop`)).rejects.toBeInstanceOf(TypeError);
    expect(resource.at('/mcp/loop')).toHaveLength(plainCount);
    expect(bearers(resource.at('/mcp/loop')).every(Boolean)).toBe(true);
  });

  it('a 401 reached through an in-resource redirect leads to the one re-acquisition and retry', async () => {
    resource.routes = (hit, authorized) => (hit.path === '/mcp' && authorized ? redirect(302, '/mcp/v2') : undefined);
    const first = await authedFetch(resource.resource);
    expect(first.status).toBe(200);
    const firstToken = resource.at('/mcp/v2')[0]!.authorization;
    // The cached token is now refused at /mcp/v2 only (/mcp still redirects with it; 307 keeps the POST).
    resource.routes = (hit) => {
      if (hit.path === '/mcp' && hit.authorization?.startsWith('Bearer ')) return redirect(307, '/mcp/v2');
      if (hit.path === '/mcp/v2' && hit.authorization === firstToken) {
        return { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: 'revoked' };
      }
      return undefined;
    };
    resource.hits.length = 0;
    const exchanges = stack.idp.counters.exchange;
    const response = await authedFetch(resource.resource, post('again'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ path: '/mcp/v2', method: 'POST', bytes: 5 });
    expect(stack.idp.counters.exchange).toBe(exchanges + 1);
    const v2 = resource.at('/mcp/v2');
    expect(v2.map((h) => h.authorization === firstToken)).toEqual([true, false]);
    expect(v2[1]!.bytes.toString()).toBe('again');
  });
});

/** Bugs found while writing these tests, each fixed; the tests failed before the fix. */
describe('redirect chains that would carry a token out of its resource', () => {
  // Was: authorizedLoop treated a 401 that came from outside the resource (a tokened request that
  // sendWithToken let fetch follow out of the resource) as the resource's own: `elsewhere()` reads
  // the PRM the foreign challenge names, the valid cached token is dropped, a new one is acquired and
  // the request replayed (so the foreign origin gets it twice). Issue 7 #1: a challenge that did not
  // come from the requested URL must be handed back untouched.
  for (const withResource of [true, false]) {
    it(`${withResource ? 'with' : 'without'} resource: a 401 outside the resource, reached by a tokened request's redirect, is handed back untouched`, async () => {
      const stack = await stackWith();
      // The attacker's metadata claims a narrower resource that covers the requested URL.
      const attacker = await startAttacker(stack, `${stack.mcp.url}/go`);
      open.push(attacker);
      stack.mcp.override = (req) => {
        if (req.path !== '/mcp/go') return undefined;
        if (req.headers.authorization) return redirect(302, `${attacker.site.url}/landing`);
        return { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${stack.mcp.prmUrl}"` }, body: '' };
      };
      const events: CrossAppAccessEvent[] = [];
      const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { ...(withResource ? { resource: stack.mcp.resource } : {}), onEvent: (e) => events.push(e) }));
      expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
      const exchanges = stack.idp.counters.exchange;
      events.length = 0;

      const response = await authedFetch(`${stack.mcp.url}/go`, listToolsInit(2));
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(attacker.challenge);
      expect(attacker.as.requests).toEqual([]);
      expect(attacker.site.at('/landing')).toHaveLength(1); // not replayed
      expect(attacker.site.at('/prm')).toEqual([]); // the foreign challenge was not followed
      expect(events.map((e) => e.type)).not.toContain('token_invalidated');
      expect(stack.idp.counters.exchange).toBe(exchanges); // the valid token was kept
    });
  }

  // Was: redirectedFrom() stripped a fragment only when `hash !== ''`; a URL ending in an empty
  // fragment (`…/mcp#`) has hash '' but an href ending in '#', while fetch reports response.url
  // without it. The server's own 401 is taken for a redirected one and never learned from.
  it('without resource: a URL with an empty fragment (…/mcp#) is learned from its own 401', async () => {
    const stack = await stackWith();
    const log = eventLog();
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { onEvent: log.onEvent }));
    const response = await authedFetch(`${stack.mcp.url}#`, listToolsInit());
    expect(log.diagnostics()).toEqual([]);
    expect(response.status).toBe(200);
  });
});

describe('the warm path keeps the token inside the resource whatever the caller writes for redirect', () => {
  it.each([
    ['no redirect member', {}],
    ['redirect: undefined', { redirect: undefined }],
    ["redirect: 'follow'", { redirect: 'follow' as const }],
  ])('%s: a same-origin redirect out of the resource, on a warm token, carries no Authorization', async (_label, extra) => {
    const stack = await stackWith();
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
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
    const stack = await stackWith();
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
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
