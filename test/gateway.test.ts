/**
 * Many users in one process (a gateway): one CrossAppAccess engine beneath real MCP SDK v1 and v2
 * clients, users resolved per request from AsyncLocalStorage, against the real loopback IdP, one
 * authorization server and three real MCP SDK servers it guards.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, CrossAppAccessError, type CrossAppAccessEngineOptions, type CrossAppAccessEvent, type CrossAppAccessFetch } from '../src/index.js';
import { decodeJwt } from '../src/oauth/jwt.js';
import { gate } from './helpers/gate.js';
import { inBatches, whoamiThrough } from './helpers/mcp-clients.js';
import { mulberry32 } from './helpers/prng.js';
import { listToolsInit, stackEngineOptions } from './helpers/stack-options.js';
import { startMcpServer, type McpTestServer } from './servers/mcp-server.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let servers: McpTestServer[];
beforeEach(async () => {
  stack = await startStack();
  const more = await Promise.all([startMcpServer({ authorizationServer: stack.as }), startMcpServer({ authorizationServer: stack.as })]);
  servers = [stack.mcp, ...more];
  stack.as.allowedResources = servers.map((s) => s.resource);
});
afterEach(async () => {
  await Promise.all([stack.close(), ...servers.slice(1).map((s) => s.close())]);
});

const requestContext = new AsyncLocalStorage<{ user: string }>();

const engineOptions = (overrides: Partial<CrossAppAccessEngineOptions> = {}) => stackEngineOptions(stack, overrides);

/** ID tokens per user key: the gateway's session store. */
const idTokenFor = (user: string) => stack.idp.mintIdToken({ sub: user });

function gatewayFetch(xaa: CrossAppAccess): CrossAppAccessFetch {
  return xaa.fetch(fetch, {
    user: () => requestContext.getStore()?.user,
    idToken: ({ user }) => idTokenFor(user),
  });
}


/** One tool call as `user`, through a new real SDK client (v1 or v2) on the gateway's fetch. */
/** One tool call as `user`, through a new real SDK client (v1 or v2) on the gateway's fetch. */
function whoamiAs(user: string, server: McpTestServer, authedFetch: CrossAppAccessFetch, v2: boolean): Promise<string> {
  return requestContext.run({ user }, () => whoamiThrough(server.url, authedFetch, v2));
}

/** Who each token exchange was for, and for which resource: `sub resource` strings. */
function exchangesByUserAndResource(): string[] {
  return stack.idp.requests
    .filter((r) => r.method === 'POST' && r.form.subject_token)
    .map((r) => `${String(decodeJwt(r.form.subject_token!)?.claims.sub)} ${r.form.resource}`);
}


describe('one engine, many users, many servers', () => {
  it('200 users × 3 servers, interleaved at random through one gateway fetch: each answer names its own user, one exchange and one grant per (user, server), metadata once per server', async () => {
    const events: CrossAppAccessEvent[] = [];
    const xaa = new CrossAppAccess(engineOptions({ onEvent: (e) => events.push(e) }));
    const authedFetch = gatewayFetch(xaa);
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const pairs = users.flatMap((user) => servers.map((server, s) => ({ user, server, s })));
    const random = mulberry32(990);
    for (let i = pairs.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
    }
    await inBatches(pairs, 40, async ({ user, server, s }) => {
      expect(await whoamiAs(user, server, authedFetch, s === 2)).toMatch(new RegExp(`^sub=${user} `));
    });

    const exchanges = exchangesByUserAndResource();
    expect(exchanges).toHaveLength(600);
    expect(new Set(exchanges).size).toBe(600);
    expect(stack.as.counters.grant).toBe(600);
    // Discovery is per engine: each server's protected-resource metadata once, the AS's and the IdP's once.
    for (const server of servers) expect(server.counters.prm).toBe(1);
    expect(stack.as.counters.metadata).toBe(1);
    expect(stack.idp.requests.filter((r) => r.method === 'GET').length).toBeLessThanOrEqual(2);
    // Per-user events carry the user key, never a token.
    const issued = events.filter((e) => e.type === 'token_issued');
    expect(new Set(issued.map((e) => e.user)).size).toBe(200);
    expect(events.filter((e) => e.type === 'discovery').every((e) => e.user === undefined)).toBe(true);
  }, 120_000);

  it('a request with no resolvable user fails closed: nothing reaches the IdP, the AS, or the MCP server with a token', async () => {
    for (const resource of [stack.mcp.resource, undefined]) {
      const xaa = new CrossAppAccess(engineOptions({ resource }));
      const authedFetch = gatewayFetch(xaa);
      // Outside any AsyncLocalStorage context: no user.
      const error = await authedFetch(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CrossAppAccessError);
      expect(error).toMatchObject({ code: 'unknown_user', stage: 'request' });
      // An empty key is no user either.
      await expect(requestContext.run({ user: '' }, () => authedFetch(stack.mcp.url, listToolsInit()))).rejects.toMatchObject({ code: 'unknown_user' });
    }
    expect(stack.idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(stack.as.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('a request outside every protected resource passes through without a user', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const response = await gatewayFetch(xaa)(`${stack.mcp.origin}/public`);
    expect(response.status).toBe(200);
  });

  it('forget(user) drops that user’s tokens only: the next request acquires for that user alone', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const authedFetch = gatewayFetch(xaa);
    const call = (user: string) => requestContext.run({ user }, () => authedFetch(stack.mcp.url, listToolsInit()));
    for (const user of ['alice', 'bob']) expect((await call(user)).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(2);
    await xaa.forget('alice');
    for (const user of ['alice', 'bob']) expect((await call(user)).status).toBe(200);
    expect(exchangesByUserAndResource().map((e) => e.split(' ')[0])).toEqual(['alice', 'bob', 'alice']);
  });

  it('forget(user) during an acquisition keeps nothing it brings back', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const asked = gate();
    const release = gate();
    const slowFetch = xaa.fetch(fetch, {
      user: 'alice',
      idToken: async () => {
        asked.open();
        await release.promise;
        return idTokenFor('alice');
      },
    });
    const pending = slowFetch(stack.mcp.url, listToolsInit());
    await asked.promise; // the acquisition is under way, waiting on its ID token
    await xaa.forget('alice');
    release.open();
    expect((await pending).status).toBe(200); // the request it was for is still answered
    expect((await slowFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(2); // the token of the first was not kept
  });

  it('an ID token naming another sub under an existing user key is refused, and nothing is sent for it', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    let sub = 'alice';
    const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: () => stack.idp.mintIdToken({ sub }) });
    expect((await aliceFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    sub = 'mallory';
    stack.as.revokeAll();
    await expect(aliceFetch(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'user_mismatch', stage: 'id_token' });
    expect(exchangesByUserAndResource().map((e) => e.split(' ')[0])).toEqual(['alice']);
    // Refused until forgotten; then the key starts afresh.
    sub = 'alice';
    await expect(aliceFetch(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'user_mismatch' });
    await xaa.forget('alice');
    expect((await aliceFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
  });

  it('the per-user fetch and getAccessToken share tokens and single-flight', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const idToken = () => idTokenFor('alice');
    const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken });
    const [viaFetch, viaToken] = await Promise.all([
      aliceFetch(stack.mcp.url, listToolsInit()),
      xaa.getAccessToken({ user: 'alice', idToken, url: stack.mcp.url }),
    ]);
    expect(viaFetch.status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.mcp.requests.at(-1)?.authorization).toBe(`Bearer ${viaToken.token}`);
    expect(viaToken).toMatchObject({ resource: stack.mcp.resource });
    expect(viaToken.expiresAt).toBeGreaterThan(Date.now());
    // The same token again, without I/O.
    expect((await xaa.getAccessToken({ user: 'alice', idToken, resource: stack.mcp.resource })).token).toBe(viaToken.token);
    expect(stack.idp.counters.exchange).toBe(1);
  });

  it('getAccessToken discovers a server from its well-known metadata, and invalidate drops a refused token only once', async () => {
    const xaa = new CrossAppAccess(engineOptions());
    const idToken = () => idTokenFor('alice');
    const first = await xaa.getAccessToken({ user: 'alice', idToken, url: stack.mcp.url });
    expect(first.resource).toBe(stack.mcp.resource);
    stack.as.revokeAll();
    expect(xaa.invalidate({ user: 'alice', token: first.token, url: stack.mcp.url })).toBe(true);
    expect(xaa.invalidate({ user: 'alice', token: first.token, url: stack.mcp.url })).toBe(false); // already gone
    const second = await xaa.getAccessToken({ user: 'alice', idToken, url: stack.mcp.url });
    expect(second.token).not.toBe(first.token);
    // A straggler's invalidate for the old token leaves the new one in place.
    expect(xaa.invalidate({ user: 'alice', token: first.token, url: stack.mcp.url })).toBe(false);
    expect((await xaa.getAccessToken({ user: 'alice', idToken, url: stack.mcp.url })).token).toBe(second.token);
    // Bob's token is his own.
    const bob = await xaa.getAccessToken({ user: 'bob', idToken: () => idTokenFor('bob'), url: stack.mcp.url });
    expect(bob.token).not.toBe(second.token);
  });

  it('getAccessToken refuses a URL outside the configured resource and a missing user', async () => {
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const idToken = () => idTokenFor('alice');
    await expect(xaa.getAccessToken({ user: 'alice', idToken, url: `${stack.mcp.origin}/admin` })).rejects.toMatchObject({ code: 'invalid_option' });
    await expect(xaa.getAccessToken({ user: '', idToken, url: stack.mcp.url })).rejects.toMatchObject({ code: 'unknown_user' });
    expect(stack.idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });

  it('the engine refuses an idToken option, and a fetch session without a user', () => {
    expect(() => new CrossAppAccess({ ...engineOptions(), idToken: 'x' } as CrossAppAccessEngineOptions)).toThrow(/idToken: is not an engine option/);
    const xaa = new CrossAppAccess(engineOptions());
    expect(() => xaa.fetch(fetch, { idToken: 'x' } as never)).toThrow(/user: is required/);
  });
});
