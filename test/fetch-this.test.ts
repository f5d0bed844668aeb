/**
 * Every fetch the package is given is called as a plain function. Browsers and workerd refuse a fetch
 * whose `this` is not the global object ("Illegal invocation"); Node does not mind, so this fetch
 * refuses a foreign `this` the way they do, for every path: the wrapped fetch, `oauthFetch`, the
 * middleware form, the engine's fetch and getAccessToken, with and without `resource`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, crossAppAccess, withCrossAppAccess, type FetchLike } from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

const foreignThis: unknown[] = [];
/** Calls that reached it (so a test cannot pass without it being used). */
let called = 0;
/** Global fetch that throws, as browsers do, when called as a method of anything but the global object. */
const strictFetch = function strictFetch(this: unknown, url: string | URL, init?: RequestInit): Promise<Response> {
  called++;
  if (this !== undefined && this !== globalThis) {
    foreignThis.push(this);
    throw new TypeError("Failed to execute 'fetch' on 'Window': Illegal invocation");
  }
  return fetch(url, init);
} as FetchLike;

beforeEach(() => {
  foreignThis.length = 0;
  called = 0;
});

describe('a fetch that refuses a foreign this', () => {
  for (const resource of [true, false]) {
    const where = resource ? 'with resource' : 'without resource (learned from the 401)';
    it(`withCrossAppAccess(fetch) authenticates, ${where}`, async () => {
      const authedFetch = withCrossAppAccess(strictFetch, stackOptions(stack, resource ? { resource: stack.mcp.resource } : {}));
      expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
      expect(stack.as.counters.grant).toBe(1);
      expect(foreignThis).toEqual([]);
    });
  }

  it('as oauthFetch, and beneath the middleware form', async () => {
    const authedFetch = crossAppAccess(stackOptions(stack, { oauthFetch: strictFetch }))(strictFetch);
    expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(foreignThis).toEqual([]);
    expect(called).toBeGreaterThanOrEqual(4);
  });

  it("as the engine's fetch and oauthFetch, and for getAccessToken", async () => {
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
      oauthFetch: strictFetch,
    });
    const idToken = () => stack.idp.mintIdToken({ sub: 'bob' });
    const { token } = await xaa.getAccessToken({ user: 'bob', idToken, url: stack.mcp.url });
    expect(stack.as.verifyAccessToken(token)?.sub).toBe('bob');
    const tokenRequests = called;
    expect((await xaa.fetch(strictFetch, { user: 'bob', idToken })(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(foreignThis).toEqual([]);
    // Its metadata and token requests went through oauthFetch, and the MCP request through the fetch given.
    expect(tokenRequests).toBeGreaterThanOrEqual(3);
    expect(called).toBeGreaterThan(tokenRequests);
  });
});
