/**
 * The undici interceptor installed with `setGlobalDispatcher`: Node's global fetch, undici.request
 * and real MCP SDK v1 and v2 clients on plain global fetch reach the real loopback MCP server signed
 * in, and the engine's own metadata and token requests never go through the interceptor.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch, getGlobalDispatcher, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, CrossAppAccessError, crossAppAccessErrorOf, isCrossAppAccessError, type CrossAppAccessEngineOptions } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { listToolsInit, stackEngineOptions } from './helpers/stack-options.js';
import type { OverrideResponse } from './servers/http-util.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let previous: Dispatcher;
let installed: Dispatcher | undefined;
beforeEach(async () => {
  stack = await startStack();
  previous = getGlobalDispatcher();
});
afterEach(async () => {
  setGlobalDispatcher(previous);
  await installed?.close();
  installed = undefined;
  await stack.close();
});

const engineOptions = (overrides: Partial<CrossAppAccessEngineOptions> = {}) => stackEngineOptions(stack, overrides);

const requestContext = new AsyncLocalStorage<string>();

function install(options: CrossAppAccessEngineOptions = engineOptions({ resource: stack.mcp.resource })): void {
  installed = new Agent().compose(
    crossAppAccessInterceptor(options, { user: () => requestContext.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }) }),
  );
  setGlobalDispatcher(installed);
}

function text(result: unknown): string {
  return (result as { content: Array<{ text: string }> }).content.map((c) => c.text).join('');
}

describe('crossAppAccessInterceptor as the global dispatcher', () => {
  it("Node's global fetch and undici.request reach the MCP server signed in", async () => {
    const before = await fetch(stack.mcp.url, listToolsInit());
    await before.body?.cancel();
    expect(before.status).toBe(401);
    install();
    await requestContext.run('alice', async () => {
      const viaFetch = await fetch(stack.mcp.url, listToolsInit());
      expect(viaFetch.status).toBe(200);
      expect(await viaFetch.text()).toContain('whoami');
      const init = listToolsInit(2);
      const viaRequest = await request(stack.mcp.url, { method: 'POST', headers: init.headers as Record<string, string>, body: init.body as string });
      expect(viaRequest.statusCode).toBe(200);
      expect(await viaRequest.body.text()).toContain('whoami');
    });
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.as.leaks()).toEqual([]);
  });

  it('real MCP SDK v1 and v2 clients on plain global fetch connect, list and call tools, each as its own user', async () => {
    install();
    const v1 = requestContext.run('alice', async () => {
      const client = new Client({ name: 'v1', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url)));
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toContain('whoami');
        return text(await client.callTool({ name: 'whoami', arguments: {} }));
      } finally {
        await client.close();
      }
    });
    const v2 = requestContext.run('bob', async () => {
      const client = new ClientV2({ name: 'v2', version: '1.0.0' });
      await client.connect(new TransportV2(new URL(stack.mcp.url)));
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toContain('whoami');
        return text(await client.callTool({ name: 'whoami', arguments: {} }));
      } finally {
        await client.close();
      }
    });
    expect(await v1).toMatch(/^sub=alice\b/);
    expect(await v2).toMatch(/^sub=bob\b/);
  });

  it("a shared engine's own requests keep going through the global dispatcher (its proxy), unsigned, for every adapter of the engine", async () => {
    // A recording interceptor outside ours stands in for the process's egress proxy.
    const seen: string[] = [];
    const recording: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
      seen.push(`${String(opts.method)} ${String(opts.origin)}${String(opts.path)} ${String((opts.headers as Record<string, string> | undefined)?.authorization ?? '').split(' ')[0]}`);
      return dispatch(opts, handler);
    };
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const idToken = ({ user }: { user: string }) => stack.idp.mintIdToken({ sub: user });
    installed = new Agent().compose(crossAppAccessInterceptor(xaa, { user: () => requestContext.getStore(), idToken }), recording);
    setGlobalDispatcher(installed);
    // The engine's fetch adapter, on the global fetch: its token requests went through the proxy before the interceptor was made, and still do.
    const plain = new Agent();
    const bobFetch = xaa.fetch((url, init) => undiciFetch(url, { ...(init as object), dispatcher: plain }) as unknown as Promise<Response>, { user: 'bob', idToken });
    expect((await bobFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect((await requestContext.run('alice', () => fetch(stack.mcp.url, listToolsInit()))).status).toBe(200);
    const tokenPosts = seen.filter((line) => line.startsWith(`POST ${stack.idp.origin}`) || line.startsWith(`POST ${stack.as.origin}`));
    expect(tokenPosts).toHaveLength(4); // an exchange and a grant for each of bob and alice
    expect(tokenPosts.some((line) => line.endsWith('Bearer'))).toBe(false);
    await plain.close();
  });

  it.each([
    ['made from options (its requests on a plain Agent)', false],
    ['a shared CrossAppAccess (its requests through the global fetch, marked)', true],
  ])("the engine's own requests bypass it, %s: a resource at the origin root, its authorization server on the same origin", async (_, shared) => {
    // The AS's origin also serves a protected resource at its root: every AS URL is inside it.
    const root = `${stack.as.origin}/`;
    stack.as.allowedResources = [root];
    stack.as.override = (req): OverrideResponse | undefined => {
      if (req.path === '/.well-known/oauth-protected-resource') {
        return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource: root, authorization_servers: [stack.as.issuer] }) };
      }
      if (req.path !== '/data') return undefined;
      const auth = String(req.headers.authorization ?? '');
      const info = auth.startsWith('Bearer ') ? stack.as.verifyAccessToken(auth.slice(7)) : undefined;
      if (info?.resource === root) return { status: 200, body: `sub=${info.sub}` };
      return { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${stack.as.origin}/.well-known/oauth-protected-resource"` }, body: '' };
    };
    // No `resource`: learned from the 401, so any loopback URL may carry a token.
    if (shared) {
      const xaa = new CrossAppAccess(engineOptions());
      installed = new Agent().compose(crossAppAccessInterceptor(xaa, { user: () => requestContext.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }) }));
      setGlobalDispatcher(installed);
    } else {
      install(engineOptions());
    }
    const answer = await requestContext.run('alice', async () => {
      const response = await fetch(`${stack.as.origin}/data`, { signal: AbortSignal.timeout(5000) });
      return `${response.status} ${await response.text()}`;
    });
    expect(answer).toBe('200 sub=alice');
    const tokenRequests = stack.as.requests.filter((r) => r.path === new URL(stack.as.tokenEndpoint).pathname);
    expect(tokenRequests).toHaveLength(1);
    expect(String(tokenRequests[0]!.headers.authorization)).not.toMatch(/^Bearer/i);
    // Metadata was fetched once each, never probed through the interceptor first.
    expect(stack.as.requests.filter((r) => r.path === '/.well-known/oauth-protected-resource')).toHaveLength(1);
  });

  it("an interceptor failure reaches global fetch as TypeError('fetch failed') with it in cause: crossAppAccessErrorOf finds it", async () => {
    install();
    // No user in context: the interceptor refuses with unknown_user; fetch wraps the dispatcher's error.
    const failure = await fetch(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TypeError);
    expect(failure).not.toBeInstanceOf(CrossAppAccessError);
    expect(isCrossAppAccessError(failure)).toBe(true);
    expect(crossAppAccessErrorOf(failure)?.code).toBe('unknown_user');
    // undici.request is not wrapped: the error itself.
    const direct = await request(stack.mcp.url, { method: 'POST', body: '{}' }).catch((e: unknown) => e);
    expect(crossAppAccessErrorOf(direct)).toBe(direct);
    // Only the resource's metadata was fetched (discovery); nothing was sent to the MCP endpoint.
    expect(stack.mcp.requests.filter((r) => !r.path.startsWith('/.well-known/'))).toEqual([]);
  });
});

describe('crossAppAccessErrorOf', () => {
  it('looks through causes, stops on cycles, depth and throwing getters', () => {
    const inner = new CrossAppAccessError('x', { code: 'timeout', stage: 'request' });
    expect(crossAppAccessErrorOf(new Error('a', { cause: new Error('b', { cause: inner }) }))).toBe(inner);
    const cycle: { cause?: unknown } = {};
    cycle.cause = cycle;
    expect(crossAppAccessErrorOf(cycle)).toBeUndefined();
    let deep: unknown = inner;
    for (let i = 0; i < 20; i++) deep = new Error('wrap', { cause: deep });
    expect(crossAppAccessErrorOf(deep)).toBeUndefined();
    expect(crossAppAccessErrorOf(Object.defineProperty({}, 'cause', { get: () => { throw new Error('no'); } }))).toBeUndefined();
    for (const nothing of [undefined, null, 'text', 42]) expect(isCrossAppAccessError(nothing)).toBe(false);
  });
});

