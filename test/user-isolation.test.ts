/**
 * The many-users engine under attack: one user's token must never reach another user,
 * protected requests fail closed, tokens stay inside their resource, and nothing leaks or piles up.
 * Real loopback IdP, AS and MCP SDK servers.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { gate } from './helpers/gate.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, type CrossAppAccessEngineOptions, type CrossAppAccessEvent } from '../src/index.js';
import { engineBehind } from '../src/engine/handles.js';
import { decodeJwt } from '../src/oauth/jwt.js';
import { listToolsInit, stackEngineOptions } from './helpers/stack-options.js';
import { startMcpServer } from './servers/mcp-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

const engineOptions = (overrides: Partial<CrossAppAccessEngineOptions> = {}) => stackEngineOptions(stack, overrides);

const idTokenFor = (sub: string) => stack.idp.mintIdToken({ sub });


/** Whose token the MCP server received on its last authorized request. */
function lastSubAtMcp(): string | undefined {
  const header = stack.mcp.requests.filter((r) => r.authorization).at(-1)?.authorization;
  return header ? stack.as.verifyAccessToken(header.replace(/^Bearer /, ''))?.sub : undefined;
}

function subOfToken(token: string): string | undefined {
  return stack.as.verifyAccessToken(token)?.sub;
}

const requestContext = new AsyncLocalStorage<{ user: string }>();

describe('one user’s token never reaches another', () => {
  // Guards against: Flights were keyed by the token-key string (binding key + user key), not by the UserState.
  // forget(key) drops the UserState and the stored tokens, but an acquisition under way for the old
  // holder of the key stays in Flights under the same string. The next holder of the key (the
  // docs say: "call forget() on sign-out before the key is reused") joins that flight and is sent
  // with the previous user's access token. The rule: key flights by UserState too (e.g. append a per-state
  // generation/id to the flight key, or keep flights in the UserState), or have forget() detach
  // the user's flights so that later callers start their own.
  it('forget(key) during an acquisition, then the key is reused by another person: the new person is never sent with the old one’s token (fetch)', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const slow = gate();
    // Seat "kiosk-1": first alice (her SSO is slow), then she signs out and bob signs in on the same key.
    const aliceAsked = gate();
    const bobAsked = gate();
    const aliceFetch = xaa.fetch(fetch, { user: 'kiosk-1', idToken: async () => { aliceAsked.open(); await slow.promise; return idTokenFor('alice'); } });
    const bobFetch = xaa.fetch(fetch, { user: 'kiosk-1', idToken: () => (bobAsked.open(), idTokenFor('bob')) });
    const alicePending = aliceFetch(stack.mcp.url, listToolsInit());
    await aliceAsked.promise;
    await xaa.forget('kiosk-1');
    const bobPending = bobFetch(stack.mcp.url, listToolsInit());
    await bobAsked.promise; // bob's own acquisition started (joining alice's would never ask)
    slow.open();
    expect((await alicePending).status).toBe(200);
    expect((await bobPending).status).toBe(200);
    // Each request with its own person's token (alice's may arrive last: her SSO was slow).
    const subs = stack.mcp.requests.filter((r) => r.authorization).map((r) => subOfToken(r.authorization!.replace(/^Bearer /, '')));
    expect(subs.sort()).toEqual(['alice', 'bob']);
  });

  // Guards against: same root cause, through getAccessToken.
  it('forget(key) during an acquisition, then the key is reused: getAccessToken returns the new person’s token, not the old one’s', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const slow = gate();
    const aliceAsked = gate();
    const bobAsked = gate();
    const alice = xaa.getAccessToken({ user: 'kiosk-1', url: stack.mcp.url, idToken: async () => { aliceAsked.open(); await slow.promise; return idTokenFor('alice'); } });
    await aliceAsked.promise;
    await xaa.forget('kiosk-1');
    const bob = xaa.getAccessToken({ user: 'kiosk-1', url: stack.mcp.url, idToken: () => (bobAsked.open(), idTokenFor('bob')) });
    await bobAsked.promise; // bob's own acquisition started (joining alice's would never ask)
    slow.open();
    expect(subOfToken((await alice).token)).toBe('alice');
    expect(subOfToken((await bob).token)).toBe('bob');
  });

  // Guards against: same root cause, through a background renewal started by the old holder's request.
  it('forget(key) during a background renewal, then the key is reused: the renewal’s token (old person) is not handed to the new person', async () => {
    let clock = Date.now();
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource, now: () => clock }));
    const renewal = gate();
    const renewalAsked = gate();
    const bobAsked = gate();
    const aliceFetch = xaa.fetch(fetch, {
      user: 'kiosk-1',
      idToken: async ({ reason }) => {
        if (reason === 'renewal') {
          renewalAsked.open();
          await renewal.promise;
        }
        return idTokenFor('alice');
      },
    });
    expect((await aliceFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    clock += 3_500_000; // inside the renewal window (3600 s tokens), still valid
    expect((await aliceFetch(stack.mcp.url, listToolsInit())).status).toBe(200); // starts a background renewal
    await renewalAsked.promise;
    await xaa.forget('kiosk-1');
    const bobFetch = xaa.fetch(fetch, { user: 'kiosk-1', idToken: () => (bobAsked.open(), idTokenFor('bob')) });
    const bobPending = bobFetch(stack.mcp.url, listToolsInit());
    await bobAsked.promise; // bob's own acquisition started (joining the renewal would never ask)
    renewal.open();
    expect((await bobPending).status).toBe(200);
    expect(lastSubAtMcp()).toBe('bob');
  });

  it('concurrent first requests of many users through one gateway fetch: each is sent with its own token', async () => {
    const xaa = new CrossAppAccess(engineOptions());
    const slow = gate();
    const allAsked = gate();
    const users = Array.from({ length: 12 }, (_, i) => `u${i}`);
    const asked = new Set<string>();
    const gw = xaa.fetch(fetch, {
      user: () => requestContext.getStore()?.user,
      idToken: async ({ user }) => {
        asked.add(user);
        if (asked.size === users.length) allAsked.open();
        if (user === 'u0') await slow.promise; // u0's acquisition is the slow one: others must not join it
        return idTokenFor(user);
      },
    });
    const seen = new Map<string, string | undefined>();
    const pending = users.map((user) =>
      requestContext.run({ user }, async () => {
        const response = await gw(stack.mcp.url, listToolsInit());
        expect(response.status).toBe(200);
      }),
    );
    await allAsked.promise; // every user's own acquisition started (joining u0's would never ask)
    slow.open();
    await Promise.all(pending);
    for (const r of stack.mcp.requests.filter((q) => q.authorization)) {
      const sub = subOfToken(r.authorization!.replace(/^Bearer /, ''));
      seen.set(sub!, sub);
    }
    expect([...seen.keys()].sort()).toEqual([...users].sort());
    expect(stack.idp.counters.exchange).toBe(12);
  });

  it('user keys that differ only by NUL or a suffix never share tokens', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const keys = ['a', 'a\u0000', '\u0000a', 'a\u0000b', 'a b', 'A', '["a"]'];
    const tokens = new Map<string, string>();
    for (const [i, user] of keys.entries()) {
      const t = await xaa.getAccessToken({ user, url: stack.mcp.url, idToken: () => idTokenFor(`person-${i}`) });
      tokens.set(user, t.token);
      expect(subOfToken(t.token)).toBe(`person-${i}`);
    }
    expect(new Set(tokens.values()).size).toBe(keys.length);
    await xaa.forget('a');
    // forgetting "a" leaves "a\u0000" and the others untouched
    for (const [i, user] of keys.entries()) {
      if (user === 'a') continue;
      const again = await xaa.getAccessToken({ user, url: stack.mcp.url, idToken: () => idTokenFor(`person-${i}`) });
      expect(again.token).toBe(tokens.get(user));
    }
  });

  it('invalidate for one user never drops another user’s token, even when given the other’s token', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const alice = await xaa.getAccessToken({ user: 'alice', url: stack.mcp.url, idToken: () => idTokenFor('alice') });
    const bob = await xaa.getAccessToken({ user: 'bob', url: stack.mcp.url, idToken: () => idTokenFor('bob') });
    expect(xaa.invalidate({ user: 'alice', token: bob.token, url: stack.mcp.url })).toBe(false);
    expect((await xaa.getAccessToken({ user: 'bob', url: stack.mcp.url, idToken: () => idTokenFor('bob') })).token).toBe(bob.token);
    expect((await xaa.getAccessToken({ user: 'alice', url: stack.mcp.url, idToken: () => idTokenFor('alice') })).token).toBe(alice.token);
  });
});


describe('one user’s step-up and another user', () => {
  /** The MCP server wants `admin` from alice only (an admin-only tool she calls); the IdP refuses `admin` to bob. */
  function aliceNeedsAdmin(): void {
    stack.mcp.override = (req) => {
      const token = String(req.headers.authorization ?? '').replace('Bearer ', '');
      const info = stack.as.verifyAccessToken(token);
      if (req.path !== '/mcp' || info?.sub !== 'alice' || info.scopes.includes('admin')) return undefined;
      return { status: 403, headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="files:read admin"' }, body: '' };
    };
    stack.idp.override = (req) => {
      if (req.method !== 'POST' || !req.form.subject_token) return undefined;
      const sub = decodeJwt(req.form.subject_token)?.claims.sub;
      return sub === 'bob' && (req.form.scope ?? '').split(' ').includes('admin')
        ? { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_scope', error_description: 'bob is not an admin' }) }
        : undefined;
    };
  }

  // Guards against: a step-up is engine-wide: registry.adopt() replaces the resource's binding (its scopes and
  // its key) for every user once ONE user's stepped-up token is granted. Afterwards every other
  // user's token key changes (their valid tokens are no longer found) and their acquisitions ask the
  // IdP for the stepped-up scopes: bob, who never needed `admin` and is not entitled to it, now fails
  // with invalid_scope on every request (a cross-user denial of service); where the IdP grants it,
  // every user is issued a wider token than they need (least privilege lost). The rule: keep stepped-up
  // scopes per user (e.g. in UserState, keyed by resource) and leave the shared binding as learned;
  // or adopt only within the session that stepped up.
  it('alice’s step-up to admin does not change what bob asks for, nor break bob’s requests', async () => {
    aliceNeedsAdmin();
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource, scope: 'files:read' }));
    const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: () => idTokenFor('alice') });
    const bobFetch = xaa.fetch(fetch, { user: 'bob', idToken: () => idTokenFor('bob') });
    expect((await bobFetch(stack.mcp.url, listToolsInit(1))).status).toBe(200);
    expect((await aliceFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200); // stepped up to admin
    const bobAgain = await bobFetch(stack.mcp.url, listToolsInit(3)).catch((e: unknown) => e);
    const bobExchanges = stack.idp.requests
      .filter((r) => r.method === 'POST' && r.form.subject_token && decodeJwt(r.form.subject_token)?.claims.sub === 'bob')
      .map((r) => r.form.scope);
    expect(bobExchanges).toEqual(['files:read']); // bob's valid token is used again; he never asks for admin
    expect((bobAgain as Response).status).toBe(200);
  });
});


describe('who a request is for, and failing closed', () => {
  // Guards against: the user resolver is called when a token is first needed, which for a
  // resource not yet learned is AFTER the unauthenticated probe's round trip (and discovery). A
  // resolver that reads anything but async-context state (a variable the gateway sets per call,
  // a request-scoped DI container that is reset between calls) then names whoever is current by
  // then: alice's call goes out with bob's token. The rule: resolve the user synchronously when the
  // fetch is called (snapshot the key; fail closed later, only if a token turns out to be needed).
  it('the user is the one current when the call was made, even for a resource learned by this call (probe first)', async () => {
    const xaa = new CrossAppAccess(engineOptions());
    let current: string | undefined;
    const gw = xaa.fetch(fetch, { user: () => current, idToken: ({ user }) => idTokenFor(user) });
    current = 'alice';
    const aliceCall = gw(stack.mcp.url, listToolsInit(1));
    current = 'bob';
    const bobCall = gw(stack.mcp.url, listToolsInit(2));
    expect((await aliceCall).status).toBe(200);
    expect((await bobCall).status).toBe(200);
    const subs = stack.mcp.requests.filter((r) => r.authorization).map((r) => subOfToken(r.authorization!.replace(/^Bearer /, '')));
    expect(subs.sort()).toEqual(['alice', 'bob']);
  });

  it('a resolver that throws: the app’s error reaches the caller, nothing is sent with a token, and nothing is acquired', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const boom = new Error('session store down');
    const gw = xaa.fetch(fetch, { user: () => { throw boom; }, idToken: () => idTokenFor('x') });
    await expect(gw(stack.mcp.url, listToolsInit())).rejects.toBe(boom);
    // Learned through another user; then the throwing resolver again.
    expect((await xaa.fetch(fetch, { user: 'alice', idToken: () => idTokenFor('alice') })(stack.mcp.url, listToolsInit())).status).toBe(200);
    await expect(gw(stack.mcp.url, listToolsInit())).rejects.toBe(boom);
    expect(stack.mcp.requests.filter((r) => r.authorization).length).toBe(1);
    expect(stack.idp.counters.exchange).toBe(1);
  });

  it('no user for a resource learned through another user’s request: fails closed, nothing sent at all', async () => {
    const xaa = new CrossAppAccess(engineOptions());
    expect((await xaa.fetch(fetch, { user: 'alice', idToken: () => idTokenFor('alice') })(stack.mcp.url, listToolsInit())).status).toBe(200);
    stack.mcp.reset();
    const gw = xaa.fetch(fetch, { user: () => undefined, idToken: () => idTokenFor('x') });
    await expect(gw(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'unknown_user' });
    await expect(gw(new Request(stack.mcp.url, listToolsInit()))).rejects.toMatchObject({ code: 'unknown_user' });
    expect(stack.mcp.requests).toEqual([]);
  });

  it('URL tricks never carry a token out of the resource: .., %2e%2e, encoded slash, backslashes, case', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: () => idTokenFor('alice') });
    expect((await aliceFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    const o = stack.mcp.origin;
    for (const url of [`${o}/mcp/../admin`, `${o}/mcp/%2e%2e/admin`, `${o}/mcp/.%2E/admin`, `${o}/mcp%2F..%2Fadmin`, `${o}/MCP`, `${o}/mcp2`, `${o}/mcp\\..\\admin`]) {
      await aliceFetch(url, { method: 'GET' });
    }
    const outside = stack.mcp.requests.filter((r) => r.path !== '/mcp' && !r.path.startsWith('/mcp/'));
    expect(outside.length).toBeGreaterThan(0);
    expect(outside.filter((r) => r.authorization)).toEqual([]);
  });
});

describe('bounded state', () => {
  // Guards against: Engine.renewalPausedUntil (token key → epoch ms) gets an entry for every token key
  // whose background renewal failed, and loses it only when a later renewal for that key succeeds.
  // forget() does not clear it, nothing expires it, it has no bound: a gateway whose users churn
  // while the IdP refuses renewals (users whose IdP sessions ended, the usual case at sign-out)
  // grows it forever. The rule: drop the entry once its pause has passed (check-and-delete in
  // renewInBackground), on forget(), and/or keep it in an LRU sized like the token store.
  it('failed background renewals of users who then sign out leave nothing behind', async () => {
    let clock = Date.now();
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource, now: () => clock }));
    const users = Array.from({ length: 20 }, (_, i) => `churn-${i}`);
    const sessions = users.map((user) => xaa.fetch(fetch, { user, idToken: ({ reason }) => (reason === 'renewal' ? Promise.reject(new Error('SSO session ended')) : idTokenFor(user)) }));
    for (const f of sessions) expect((await f(stack.mcp.url, listToolsInit())).status).toBe(200);
    clock += 3_500_000; // inside every token's renewal window
    for (const f of sessions) expect((await f(stack.mcp.url, listToolsInit())).status).toBe(200);
    const paused = (engineBehind(xaa) as unknown as { renewalPauses: { size: number } }).renewalPauses;
    await expect.poll(() => paused.size).toBe(users.length); // every renewal failed and paused its key
    for (const user of users) await xaa.forget(user);
    expect(paused.size).toBe(0);
  });
});


describe('what events and errors say', () => {
  // Guards against: the path-aware protected-resource metadata URL is built with the caller's query
  // (`protectedResourceUrls`: `${base}${target.pathname}${target.search}`), and that URL goes into
  // the `discovery` event and into `metadata_not_found` messages ("tried …"), although
  // describeUrl's contract is that queries (which may carry a caller's secrets, e.g. `?key=`) never
  // appear in messages or events. The rule: leave the request's query out of the well-known URL (the MCP
  // spec derives it from the endpoint path), or describe the URL without its query when reporting it.
  it('a query in the requested URL never appears in a discovery event or a discovery error', async () => {
    // A server whose challenge names no resource_metadata: the well-known URLs are derived from the request.
    const quiet = await startMcpServer({ authorizationServer: stack.as, challengeResourceMetadata: false });
    stack.as.allowedResources = [stack.mcp.resource, quiet.resource];
    try {
      const events: CrossAppAccessEvent[] = [];
      const xaa = new CrossAppAccess(engineOptions({ onEvent: (e) => events.push(e) }));
      const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: () => idTokenFor('alice') });
      const response = await aliceFetch(`${quiet.url}?api_key=CALLER-SECRET-123`, listToolsInit());
      expect(response.status).toBe(200);
      // And a server without metadata, with `resource` configured: the error says what was tried.
      const pinned = new CrossAppAccess(engineOptions({ resource: `${stack.idp.issuer}/nothing`, onEvent: (e) => events.push(e) }));
      const error = await pinned.getAccessToken({ user: 'alice', idToken: () => idTokenFor('alice'), url: `${stack.idp.issuer}/nothing?api_key=CALLER-SECRET-123` }).catch((e: unknown) => e);
      expect(JSON.stringify(events)).not.toContain('CALLER-SECRET-123');
      expect(String((error as Error).message)).not.toContain('CALLER-SECRET-123');
    } finally {
      await quiet.close();
    }
  });

  it('events and errors of a gateway carry user keys but never an ID token, ID-JAG, access token or client secret', async () => {
    const events: CrossAppAccessEvent[] = [];
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource, onEvent: (e) => events.push(e) }));
    const idTokens: string[] = [];
    const mint = async (sub: string) => {
      const t = await idTokenFor(sub);
      idTokens.push(t);
      return t;
    };
    // A server that echoes what it was sent, at both token endpoints, after one good round.
    const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: () => mint('alice') });
    expect((await aliceFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    const accessTokens = stack.mcp.requests.filter((r) => r.authorization).map((r) => r.authorization!.replace(/^Bearer /, ''));
    const jags: string[] = [];
    stack.as.override = (req) => {
      if (req.method !== 'POST') return undefined;
      if (req.form.assertion) jags.push(req.form.assertion);
      return { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_request', error_description: `echo ${JSON.stringify(req.form)} ${JSON.stringify(req.headers)}` }) };
    };
    const bobFetch = xaa.fetch(fetch, { user: 'bob', idToken: () => mint('bob') });
    const error = await bobFetch(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(error).toMatchObject({ stage: 'jwt_bearer' });
    const said = [JSON.stringify(events), JSON.stringify(error), String((error as Error).message)].join('\n');
    const basic = Buffer.from(`${DEFAULT_AS_CLIENT.clientId}:${DEFAULT_AS_CLIENT.clientSecret}`).toString('base64');
    for (const secret of [...idTokens, ...jags, ...accessTokens, DEFAULT_AS_CLIENT.clientSecret, basic]) expect(said).not.toContain(secret);
    expect(events.some((e) => e.user === 'bob')).toBe(true);
  });
});

export { decodeJwt, engineBehind, type CrossAppAccessEvent };
