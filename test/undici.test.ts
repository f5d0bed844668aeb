/**
 * The undici interceptor (`cross-app-access/undici`) on a composed Agent, against the real loopback
 * IdP, authorization server, MCP SDK server and a body-recording resource server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, CrossAppAccessError, ConfigurationError, type CrossAppAccessEngineOptions } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { startResourceServer, type ResourceServer } from './helpers/resource-server.js';
import { jsonRpc, MCP_HEADERS, stackEngineOptions } from './helpers/stack-options.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';
import { unhandledRejectionsDuring } from './helpers/unhandled.js';

let stack: Stack;
let rs: ResourceServer;
const agents: Dispatcher[] = [];
beforeEach(async () => {
  stack = await startStack();
  rs = await startResourceServer(stack.as);
  stack.as.allowedResources = [stack.mcp.resource, rs.resource];
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  await Promise.all([stack.close(), rs.close()]);
});

const engineOptions = (overrides: Partial<CrossAppAccessEngineOptions> = {}) => stackEngineOptions(stack, overrides);

/** An Agent with the interceptor (for the resource server: its AS given, no discovery of it). */
function agentFor(overrides: Partial<CrossAppAccessEngineOptions> = {}, user: string | (() => string | undefined) = 'alice', agentOptions: Agent.Options = {}) {
  const xaa = new CrossAppAccess(engineOptions({ resource: rs.resource, client: { ...engineOptions().client, issuer: stack.as.issuer }, ...overrides }));
  const agent = new Agent(agentOptions).compose(crossAppAccessInterceptor(xaa, { user, idToken: ({ user: u }) => stack.idp.mintIdToken({ sub: u }) }));
  agents.push(agent);
  return agent;
}

async function post(dispatcher: Dispatcher, url: string, body: string | Buffer | Uint8Array | Readable, signal?: AbortSignal) {
  const response = await request(url, { method: 'POST', body, dispatcher, signal });
  return { status: response.statusCode, text: await response.body.text() };
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** A plain server on another origin that records the headers it receives. */
async function startRecorder(): Promise<{ url: string; seen: IncomingHttpHeaders[]; server: Server }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => res.end('elsewhere'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, seen, server };
}

describe('crossAppAccessInterceptor on a composed Agent', () => {
  it('undici.request reaches the real MCP SDK server signed in (a bare Agent gets 401)', async () => {
    const bare = new Agent();
    agents.push(bare);
    const unauth = await request(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list'), dispatcher: bare });
    await unauth.body.dump();
    expect(unauth.statusCode).toBe(401);

    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
    const agent = new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken({ sub: 'alice' }) }));
    agents.push(agent);
    const response = await request(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(1, 'tools/list'), dispatcher: agent });
    const text = await response.body.text();
    expect(response.statusCode).toBe(200);
    expect(text).toContain('whoami');
    expect(stack.mcp.requests.at(-1)?.authorization).toMatch(/^Bearer /);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
  });

  it('validates up front with typed errors', () => {
    expect(() => crossAppAccessInterceptor(engineOptions({ resource: 'not a url' }), { user: 'a', idToken: 'x' })).toThrow(ConfigurationError);
    expect(() => crossAppAccessInterceptor(new CrossAppAccess(engineOptions()), { user: 'a' } as never)).toThrow(ConfigurationError);
    expect(() => crossAppAccessInterceptor(null as never, { user: 'a', idToken: 'x' })).toThrow(ConfigurationError);
  });

  it('100 concurrent cold undici.request calls: exactly one exchange and one grant', async () => {
    const agent = agentFor();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => post(agent, rs.resource, `body ${i}`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
  });

  it('a revoked token: one re-acquisition, every request 200, bodies (string, Buffer, stream) replayed intact', async () => {
    const agent = agentFor();
    expect((await post(agent, rs.resource, 'warm')).status).toBe(200);
    stack.as.revokeAll();
    rs.received.length = 0;
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const streamed = Buffer.from(bytes).reverse();
    const bodies: Array<[string | Buffer | Readable, Buffer]> = [
      ['a string body', Buffer.from('a string body')],
      [bytes, bytes],
      [Readable.from([streamed.subarray(0, 1000), streamed.subarray(1000)]), streamed],
    ];
    const results = await Promise.all(bodies.map(([body]) => post(agent, rs.resource, body)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    results.forEach((r, i) => expect(JSON.parse(r.text).sha256).toBe(sha256(bodies[i]![1])));
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.as.counters.grant).toBe(2);
    // Each body arrived twice, whole: with the revoked token, then with the new one.
    for (const [, expected] of bodies) expect(rs.received.filter((r) => r.bytes.equals(expected)).length).toBe(2);
  });

  it('a stream body past the replay cap is sent once and its 401 handed back', async () => {
    const agent = agentFor({ maxReplayBodyBytes: 16 });
    expect((await post(agent, rs.resource, 'warm')).status).toBe(200);
    stack.as.revokeAll();
    rs.received.length = 0;
    const big = Buffer.alloc(1000, 7);
    const result = await post(agent, rs.resource, Readable.from([big.subarray(0, 500), big.subarray(500)]));
    expect(result.status).toBe(401);
    expect(rs.received).toHaveLength(1);
    expect(rs.received[0]!.bytes.equals(big)).toBe(true);
  });

  it('a request to another origin is untouched: no Authorization, no probe, nothing acquired', async () => {
    const other = await startRecorder();
    try {
      const agent = agentFor();
      const response = await request(other.url, { dispatcher: agent, headers: { authorization: 'Basic mine' } });
      expect(await response.body.text()).toBe('elsewhere');
      expect(other.seen).toHaveLength(1);
      expect(other.seen[0]!.authorization).toBe('Basic mine');
      expect(stack.idp.counters.exchange + stack.idp.counters.metadata + stack.as.counters.grant).toBe(0);
    } finally {
      other.server.close();
    }
  });

  it('the resource spelled with localhost, called as 127.0.0.1: a 401 rejects with resource_mismatch naming the URL; no token is sent', async () => {
    const configured = rs.resource.replace('127.0.0.1', 'localhost');
    const agent = agentFor({ resource: configured });
    const error = await request(rs.resource, { method: 'POST', body: jsonRpc(1, 'tools/list'), headers: MCP_HEADERS, dispatcher: agent }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject({ code: 'resource_mismatch', status: 401 });
    expect((error as Error).message).toContain(`Call ${configured}`);
    expect(rs.received).toHaveLength(1);
    expect(rs.received.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('per-request users from AsyncLocalStorage; no user fails closed with unknown_user and sends nothing', async () => {
    const context = new AsyncLocalStorage<string>();
    const agent = agentFor({}, () => context.getStore());
    const [a, b] = await Promise.all([context.run('alice', () => post(agent, rs.resource, 'a')), context.run('bob', () => post(agent, rs.resource, 'b'))]);
    expect(JSON.parse(a.text).sub).toBe('alice');
    expect(JSON.parse(b.text).sub).toBe('bob');
    rs.received.length = 0;
    const failed = await post(agent, rs.resource, 'nobody').catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CrossAppAccessError);
    expect((failed as CrossAppAccessError).code).toBe('unknown_user');
    expect(rs.received).toHaveLength(0);
  });

  it('aborts per request: the aborted one rejects, the others sharing its acquisition succeed, no unhandled rejection', async () => {
    const agent = agentFor();
    const unhandled = await unhandledRejectionsDuring(async () => {
      const controller = new AbortController();
      const aborted = post(agent, rs.resource, 'aborted', controller.signal);
      const others = Array.from({ length: 4 }, (_, i) => post(agent, rs.resource, `other ${i}`));
      controller.abort(new Error('caller gave up'));
      await expect(aborted).rejects.toThrow('caller gave up');
      expect((await Promise.all(others)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    });
    expect(stack.as.counters.grant).toBe(1);
    // An abort during the wait never sends the request.
    expect(rs.received.map((r) => r.bytes.toString())).not.toContain('aborted');
    expect(unhandled).toEqual([]);
  });

  it("a retried request's first response is released: one connection serves the 401 and the retry, and the Agent closes at once", async () => {
    const agent = agentFor({}, 'alice', { connections: 1 });
    expect((await post(agent, rs.resource, 'warm')).status).toBe(200);
    stack.as.revokeAll();
    const result = await post(agent, rs.resource, 'again', AbortSignal.timeout(3000));
    expect(result.status).toBe(200);
    agents.splice(agents.indexOf(agent), 1);
    // A response body left unread would hold the connection, and close() would wait for it
    // (undici's bodyTimeout, minutes: past the test's timeout).
    await agent.close();
  });
});

describe('redirects and the interceptor', () => {
  it('composed outside it, each hop is checked: the token never follows a redirect out of the resource', async () => {
    const other = await startRecorder();
    try {
      stack.mcp.override = (req) => (req.path === '/mcp/go' ? { status: 302, headers: { location: other.url }, body: '' } : undefined);
      const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
      const agent = new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken() }), interceptors.redirect({ maxRedirections: 3 }));
      agents.push(agent);
      const response = await request(`${stack.mcp.url}/go`, { dispatcher: agent });
      expect(await response.body.text()).toBe('elsewhere');
      expect(stack.mcp.requests.find((r) => r.path === '/mcp/go')?.authorization).toMatch(/^Bearer /);
      expect(other.seen).toHaveLength(1);
      expect(other.seen[0]!.authorization).toBeUndefined();
    } finally {
      other.server.close();
    }
  });

  it('composed beneath it, a tokened request is not followed: the 3xx comes back', async () => {
    const other = await startRecorder();
    try {
      stack.mcp.override = (req) => (req.path === '/mcp/go' ? { status: 302, headers: { location: other.url }, body: '' } : undefined);
      const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource }));
      const agent = new Agent().compose(interceptors.redirect({ maxRedirections: 3 }), crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken() }));
      agents.push(agent);
      const response = await request(`${stack.mcp.url}/go`, { dispatcher: agent });
      await response.body.dump();
      expect(response.statusCode).toBe(302);
      expect(other.seen).toHaveLength(0);
    } finally {
      other.server.close();
    }
  });
});

describe('crossAppAccessInterceptor: 403 insufficient_scope step-up (MCP authorization spec, "Step-Up Authorization Flow")', () => {
  it('acquires with the union of the scopes, retries once with the body, and later requests use the wider token', async () => {
    stack.mcp.requiredScopes = ['files:write'];
    const xaa = new CrossAppAccess(engineOptions({ resource: stack.mcp.resource, scope: 'files:read' }));
    const agent = new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken({ sub: 'alice' }) }));
    agents.push(agent);
    const call = async (id: number) => {
      const response = await request(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(id, 'tools/list'), dispatcher: agent });
      const text = await response.body.text();
      return { status: response.statusCode, text };
    };
    const first = await call(1);
    expect(first.status).toBe(200);
    expect(first.text).toContain('whoami'); // the replayed body was the tools/list request
    expect(stack.mcp.counters.forbidden).toBe(1);
    expect(stack.idp.requests.filter((r) => r.method === 'POST').map((r) => r.form.scope)).toEqual(['files:read', 'files:read files:write']);
    expect((await call(2)).status).toBe(200);
    expect(stack.mcp.counters.forbidden).toBe(1);
    expect(stack.idp.counters.exchange).toBe(2);
  });
});
