/**
 * The wrapper end to end against real loopback servers (IdP, authorization server, MCP SDK server)
 * and real MCP SDK clients: flow, token placement, cache, single-flight, 401 retry, body replay.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { applyMiddlewares, type Middleware } from '@modelcontextprotocol/sdk/client/middleware.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { crossAppAccess, withCrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessOptions, type FetchLike } from '../src/index.js';
import { jsonRpc, listToolsInit as listTools, MCP_HEADERS, stackOptions } from './helpers/stack-options.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  vi.useRealTimers();
  await stack.close();
});

const options = (overrides: Partial<CrossAppAccessOptions> = {}) => stackOptions(stack, overrides);

async function connect(fetchFn: FetchLike): Promise<Client> {
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url), { fetch: fetchFn }));
  return client;
}

function text(result: unknown): string {
  const content = (result as { content: Array<{ type: string; text: string }> }).content;
  return content.map((c) => c.text).join('');
}


describe('with a real MCP SDK client', () => {
  it('v1 Client over StreamableHTTPClientTransport connects, lists tools and calls one', async () => {
    const events: CrossAppAccessEvent[] = [];
    const client = await connect(withCrossAppAccess(fetch, options({ onEvent: (e) => events.push(e) })));
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami']);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hello' } }))).toBe('hello');
    expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toMatch(/^sub=alice /);
    await client.close();

    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
    // Without `resource`, the first request probes and learns from the 401 (RFC 9728 §5.1).
    expect(stack.mcp.counters.unauthorized).toBe(1);
    expect(events.map((e) => e.type)).toEqual(['discovery', 'discovery', 'discovery', 'token_exchange', 'jwt_bearer', 'token_issued']);
    // No event carries a token: the fingerprint is 8 hex digits.
    const issued = events.find((e) => e.type === 'token_issued');
    expect(issued && 'fingerprint' in issued && issued.fingerprint).toMatch(/^[0-9a-f]{8}$/);
  });

  it('v2 @modelcontextprotocol/client Client works over the same wrapper', async () => {
    const client = new ClientV2({ name: 'test-client-v2', version: '1.0.0' });
    await client.connect(new TransportV2(new URL(stack.mcp.url), { fetch: withCrossAppAccess(fetch, options()) }));
    const result = await client.callTool({ name: 'echo', arguments: { text: 'v2' } });
    expect(text(result)).toBe('v2');
    await client.close();
    expect(stack.idp.counters.exchange).toBe(1);
  });

  describe('applyMiddlewares order: the first middleware listed is the one closest to the network', () => {
    /** A logging middleware that records every request it passes on and the status it got back. */
    function recording(seen: { url: string; status: number; authorization: string | null }[]): Middleware {
      return (next) => async (url, init) => {
        const response = await next(url, init);
        seen.push({ url: String(url), status: response.status, authorization: new Headers(init?.headers).get('authorization') });
        return response;
      };
    }

    it('listed before crossAppAccess, it sees the probe 401, the metadata and token requests, and the client credentials', async () => {
      const seen: { url: string; status: number; authorization: string | null }[] = [];
      // applyMiddlewares(a, b)(fetch) is b(a(fetch)): `a` is beneath `b`.
      const client = await connect(applyMiddlewares(recording(seen), crossAppAccess(options()))(fetch));
      await client.listTools();
      await client.close();
      expect(seen.some((r) => r.url === stack.mcp.url && r.status === 401)).toBe(true);
      expect(seen.some((r) => r.url === stack.idp.tokenEndpoint)).toBe(true);
      expect(seen.some((r) => r.url === stack.as.tokenEndpoint && r.authorization?.startsWith('Basic '))).toBe(true);
    });

    it('listed before crossAppAccess with oauthFetch set, it sees MCP traffic only: no metadata or token request, no credentials', async () => {
      const seen: { url: string; status: number; authorization: string | null }[] = [];
      const client = await connect(applyMiddlewares(recording(seen), crossAppAccess(options({ oauthFetch: fetch })))(fetch));
      await client.listTools();
      await client.close();
      expect(stack.idp.counters.exchange).toBe(1);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((r) => r.url !== stack.mcp.url)).toEqual([]);
      expect(seen.filter((r) => r.authorization?.startsWith('Basic '))).toEqual([]);
    });

    it('listed after crossAppAccess, it sees what the caller sees: no 401, no token request, no credentials', async () => {
      const seen: { url: string; status: number; authorization: string | null }[] = [];
      const client = await connect(applyMiddlewares(crossAppAccess(options()), recording(seen))(fetch));
      await client.listTools();
      await client.close();
      expect(stack.mcp.counters.unauthorized).toBe(1); // a 401 did happen, beneath it
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((r) => r.url !== stack.mcp.url || r.status === 401 || r.authorization !== null)).toEqual([]);
    });
  });

  it('sends leg-2 scope and resource, and the token carries the configured scope', async () => {
    const client = await connect(withCrossAppAccess(fetch, options({ scope: ['files:write', 'files:read', 'files:read'] })));
    expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toBe(`sub=alice scopes=files:read files:write idp=${stack.idp.issuer}`);
    await client.close();
    const exchange = stack.idp.requests.find((r) => r.path.endsWith('/token'));
    const grant = stack.as.requests.find((r) => r.path.endsWith('/token'));
    expect(exchange?.form.scope).toBe('files:read files:write');
    expect(exchange?.form.audience).toBe(stack.as.issuer);
    expect(exchange?.form.resource).toBe(stack.mcp.resource);
    expect(grant?.form.scope).toBe('files:read files:write');
    expect(grant?.form.resource).toBe(stack.mcp.resource);
  });
});

describe('where tokens go (MCP authorization spec, "Token Handling"; RFC 8707 §2)', () => {
  it('with resource set, the first request already carries a token (no 401 round trip)', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list') });
    expect(response.status).toBe(200);
    expect(stack.mcp.counters.unauthorized).toBe(0);
    expect(stack.mcp.counters.authorized).toBe(1);
  });

  it('a URL outside the resource on the same origin gets no Authorization', async () => {
    const authedFetch = withCrossAppAccess(fetch, options());
    const client = await connect(authedFetch);
    await client.close();
    const response = await authedFetch(`${stack.mcp.origin}/public`);
    expect(await response.text()).toBe('public');
    const publicRequest = stack.mcp.requests.find((r) => r.path === '/public');
    expect(publicRequest?.authorization).toBeUndefined();
  });

  it('another origin gets no Authorization, with or without the resource option', async () => {
    for (const resource of [undefined, stack.mcp.resource]) {
      const authedFetch = withCrossAppAccess(fetch, options(resource ? { resource } : {}));
      await (await connect(authedFetch)).close();
      stack.idp.reset();
      await authedFetch(`${stack.idp.issuer}/.well-known/openid-configuration`);
      expect(stack.idp.requests[0]?.headers.authorization).toBeUndefined();
    }
  });

  it('a path that only shares a prefix with the resource (/mcp2) gets no token', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    await authedFetch(`${stack.mcp.origin}/mcp2`);
    expect(stack.idp.counters.exchange).toBe(0);
    expect(stack.mcp.requests.find((r) => r.path === '/mcp2')?.authorization).toBeUndefined();
  });

  it('only access tokens issued by the AS ever reach the MCP server: never the ID token or the ID-JAG', async () => {
    const idTokens: string[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ idToken: async () => { const t = await stack.idp.mintIdToken(); idTokens.push(t); return t; } }));
    const client = await connect(authedFetch);
    await client.listTools();
    stack.as.revokeAll();
    await client.listTools();
    await client.close();
    expect(idTokens).toHaveLength(2);
    for (const request of stack.mcp.requests) {
      if (request.authorization === undefined) continue;
      const token = request.authorization.replace(/^Bearer /, '');
      expect(idTokens).not.toContain(token);
      expect(token.split('.')).toHaveLength(1); // opaque AS token, never a JWT (ID token or ID-JAG)
    }
  });
});

describe('cache and single-flight', () => {
  it('200 concurrent cold requests with resource set => 1 exchange, 1 grant, 200 successes', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(i, 'tools/list') })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.as.counters.metadata).toBe(1);
  });

  it('100 concurrent cold requests without resource => 1 exchange, 1 grant, each document fetched once', async () => {
    const authedFetch = withCrossAppAccess(fetch, options());
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(i, 'tools/list') })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.mcp.counters.prm).toBe(1);
    expect(stack.as.counters.metadata).toBe(1);
    expect(stack.idp.counters.metadata).toBe(1);
  });

  it('a one-user wrapper refuses an ID token naming another user, and from then on every request: no token mix-up', async () => {
    let sub = 'alice';
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource, idToken: () => stack.idp.mintIdToken({ sub }), onEvent: (e) => events.push(e) }));
    expect((await authedFetch(stack.mcp.url, listTools())).status).toBe(200);
    sub = 'bob';
    stack.as.revokeAll(); // force an acquisition: the ID token source now names bob
    const mismatch = await authedFetch(stack.mcp.url, listTools(2)).catch((e: unknown) => e);
    expect(mismatch).toMatchObject({ code: 'user_mismatch', stage: 'id_token' });
    expect((mismatch as Error).message).toContain('new CrossAppAccess(options).fetch(fetch, { user })');
    // Refused from then on, even once the source names alice again: the wrapper was shared.
    sub = 'alice';
    await expect(authedFetch(stack.mcp.url, listTools(3))).rejects.toMatchObject({ code: 'user_mismatch' });
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toHaveLength(2); // alice's call, and the 401 for her revoked token
    expect(events.filter((e) => e.type === 'failure' && e.code === 'user_mismatch')).toHaveLength(2);
  });
});

describe('401 with our token', () => {
  it('drops the token, acquires a fresh one (new ID-JAG) and retries once, body intact', async () => {
    const reasons: string[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ idToken: ({ reason }) => { reasons.push(reason); return stack.idp.mintIdToken(); } }));
    const client = await connect(authedFetch);
    stack.as.revokeAll();
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'replayed body' } }))).toBe('replayed body');
    await client.close();
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.as.counters.grant).toBe(2);
    expect(reasons).toEqual(['initial', 'renewal']);
    const assertions = stack.as.requests.filter((r) => r.form.assertion).map((r) => r.form.assertion);
    expect(new Set(assertions).size).toBe(assertions.length); // one ID-JAG per grant (MCP Enterprise-Managed Authorization §7.4.2)
  });

  it('a burst of 401s for one stale token causes exactly one re-acquisition', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    const call = (i: number) => authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(i, 'tools/list') });
    expect((await call(0)).status).toBe(200);
    stack.as.revokeAll();
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => call(i + 1)));
    expect(responses.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.as.counters.grant).toBe(2);
  });

  it('a second 401 is returned to the caller as a Response, not an error, and not retried again', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    stack.mcp.override = (req) =>
      req.headers.authorization ? { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: 'nope' } : undefined;
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list') });
    expect(response.status).toBe(401);
    expect(await response.text()).toBe('nope');
    expect(stack.mcp.counters.requests).toBe(2);
    expect(stack.idp.counters.exchange).toBe(2);
  });

  it('a 401 without a Bearer challenge from an unknown server is returned untouched', async () => {
    const authedFetch = withCrossAppAccess(fetch, options());
    stack.mcp.override = () => ({ status: 401, headers: { 'www-authenticate': 'Basic realm="x"' }, body: 'basic' });
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list') });
    expect(response.status).toBe(401);
    expect(await response.text()).toBe('basic');
    expect(stack.idp.counters.exchange).toBe(0);
  });

  it('replays a Request input without touching the caller’s Request or init', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    await (await connect(authedFetch)).close();
    stack.as.revokeAll();
    const request = new Request(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(7, 'tools/call', { name: 'echo', arguments: { text: 'from a Request' } }) });
    const init = Object.freeze({ headers: Object.freeze({ ...MCP_HEADERS, 'x-caller': 'kept' }) });
    const response = await authedFetch(request, init);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('from a Request');
    expect(request.bodyUsed).toBe(false);
    expect(request.headers.get('authorization')).toBeNull();
    expect(init.headers).toEqual({ ...MCP_HEADERS, 'x-caller': 'kept' });
    expect(stack.mcp.requests.at(-1)?.headers['x-caller']).toBe('kept');
  });

  it('init members left undefined keep the Request’s own headers and body', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    const request = new Request(stack.mcp.url, { method: 'POST', headers: { ...MCP_HEADERS, 'x-kept': 'yes' }, body: jsonRpc(3, 'tools/list') });
    const response = await authedFetch(request, { headers: undefined, body: undefined, signal: undefined });
    expect(response.status).toBe(200);
    expect(stack.mcp.requests.at(-1)?.headers['x-kept']).toBe('yes');
  });

  it('replays a ReadableStream body (duplex: half) on the retry', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    await (await connect(authedFetch)).close();
    stack.as.revokeAll();
    const bytes = new TextEncoder().encode(jsonRpc(9, 'tools/call', { name: 'echo', arguments: { text: 'streamed' } }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 10));
        controller.enqueue(bytes.subarray(10));
        controller.close();
      },
    });
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('streamed');
    expect(stack.idp.counters.exchange).toBe(2);
  });

  it('works when it wraps global fetch, and leaves other hosts alone', async () => {
    const original = globalThis.fetch;
    globalThis.fetch = withCrossAppAccess(original, options({ resource: stack.mcp.resource }));
    try {
      const response = await fetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list') });
      expect(response.status).toBe(200);
      const other = await fetch(`${stack.as.issuer}/.well-known/oauth-authorization-server`);
      expect(other.status).toBe(200);
      expect(stack.as.requests.at(-1)?.headers.authorization).toBeUndefined();
    } finally {
      globalThis.fetch = original;
    }
  });
});

describe('cancellation', () => {
  it('an aborted caller rejects with the signal’s reason; the shared acquisition still serves the others', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource, idToken: async () => { await gate; return stack.idp.mintIdToken(); } }));
    const controller = new AbortController();
    const call = (signal?: AbortSignal) => authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list'), signal });
    const aborted = call(controller.signal);
    const others = [call(), call()];
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    release();
    expect((await Promise.all(others)).map((r) => r.status)).toEqual([200, 200]);
    expect(stack.idp.counters.exchange).toBe(1);
  });
});

