/**
 * Transport-level faults at token and metadata endpoints (redirects, oversized bodies, hangs,
 * refused connections, socket resets) become typed errors through the public API (no redirect
 * followed, capped bodies, bounded time, transient failures retried), and IdP/AS requests never
 * carry the caller's headers.
 * Real loopback servers throughout; nock only for non-loopback hosts and socket resets.
 */
import type { ServerResponse } from 'node:http';
import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { withCrossAppAccess } from '../src/index.js';
import { DEFAULT_AS_CLIENT, type Stack } from './servers/stack.js';
import type { OverrideHook, OverrideResponse } from './servers/http-util.js';
import {
  closedLoopbackUrl,
  expectCaaError,
  initializeRequest,
  jsonReply,
  onTokenPost,
  type CountingServer,
} from './helpers/errors.js';
import {
  AS_SECRET,
  expectInitializeOk,
  ID_JAG_TYPE,
  idpAt,
  mintJag,
  useErrorStacks,
  type ErrorStackCtx,
} from './helpers/error-stack.js';
import { useNock } from './helpers/nock.js';

// nock activates itself on import; only the "nock" block below wants it.
nock.restore();

const KiB = 1024;

/** The wrapper under test has a configured IdP token endpoint. */
const { setup, wrap, call, counting, expectDiscoveryFailure } = useErrorStacks({ idp: 'tokenEndpoint' });

function onWellKnown(reply: () => OverrideResponse): OverrideHook {
  return (req) => (req.method === 'GET' && req.path.startsWith('/.well-known/') ? reply() : undefined);
}

/** A server that accepts requests and never answers them. */
function hangingServer(): Promise<CountingServer> {
  return counting(() => new Promise<void>(() => undefined));
}

/** Streams `bytes` of a JSON object in chunks, with no Content-Length (chunked encoding). */
function streamJson(res: ServerResponse, bytes: number, head: Record<string, unknown>): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  const prefix = `${JSON.stringify(head).slice(0, -1)},"padding":"`;
  res.write(prefix);
  const chunk = 'x'.repeat(16 * KiB);
  for (let sent = prefix.length; sent < bytes; sent += chunk.length) res.write(chunk);
  res.end('"}');
}

function noTokenReachedMcp(stack: Stack): void {
  expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
}

describe('redirects are never followed (cf. RFC 9700 §4.12)', () => {
  it.each([302, 307])('IdP token endpoint answering %i with Location → unexpected_redirect; the target got nothing', async (status) => {
    const ctx = await setup();
    const target = await counting();
    ctx.stack.idp.override = onTokenPost(() => ({ status, headers: { location: `${target.url}/steal` }, body: '' }));
    await expectCaaError(call(ctx), { code: 'unexpected_redirect', stage: 'token_exchange', status }, ctx.recorder);
    expect(target.hits).toEqual([]);
    expect(ctx.stack.idp.counters.exchange).toBe(1);
    expect(ctx.stack.as.counters.grant).toBe(0);
    noTokenReachedMcp(ctx.stack);
  });

  it.each([302, 307])('AS token endpoint answering %i with Location → unexpected_redirect; the target got nothing', async (status) => {
    const ctx = await setup();
    const target = await counting();
    ctx.stack.as.override = onTokenPost(() => ({ status, headers: { location: `${target.url}/steal` }, body: '' }));
    await expectCaaError(call(ctx), { code: 'unexpected_redirect', stage: 'jwt_bearer', status }, ctx.recorder);
    expect(target.hits).toEqual([]);
    expect(ctx.stack.as.counters.grant).toBe(1);
    noTokenReachedMcp(ctx.stack);
  });

  it('AS metadata redirecting everywhere is "not here" → metadata_not_found; the target got nothing', async () => {
    const ctx = await setup();
    const target = await counting();
    ctx.stack.as.override = onWellKnown(() => ({ status: 302, headers: { location: `${target.url}/metadata` }, body: '' }));
    await expectDiscoveryFailure(ctx, { code: 'metadata_not_found', stage: 'discovery' });
    expect(target.hits).toEqual([]);
    expect(ctx.stack.idp.requests).toEqual([]);
    noTokenReachedMcp(ctx.stack);
  });

  it('IdP metadata redirecting everywhere → metadata_not_found; the ID token never left', async () => {
    const ctx = await setup();
    const target = await counting();
    ctx.stack.idp.override = onWellKnown(() => ({ status: 307, headers: { location: `${target.url}/metadata` }, body: '' }));
    await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { issuer: ctx.stack.idp.issuer }) }),
      { code: 'metadata_not_found', stage: 'discovery' },
      ctx.recorder,
    );
    expect(target.hits).toEqual([]);
    expect(ctx.stack.idp.counters.exchange).toBe(0);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });
});

describe('response size caps', () => {
  const bigMetadata = (issuer: string) => ({ issuer, token_endpoint: `${issuer}/token`, padding: 'x'.repeat(300 * KiB) });

  it('protected-resource metadata over 256 KiB → response_too_large/discovery', async () => {
    const ctx = await setup();
    ctx.stack.mcp.override = onWellKnown(() => jsonReply(200, { resource: ctx.stack.mcp.resource, authorization_servers: [ctx.stack.as.issuer], padding: 'x'.repeat(300 * KiB) }));
    await expectDiscoveryFailure(ctx, { code: 'response_too_large', stage: 'discovery', status: 200 });
    expect(ctx.stack.as.requests).toEqual([]);
    expect(ctx.stack.idp.requests).toEqual([]);
  });

  it('AS metadata over 256 KiB (Content-Length) → response_too_large/discovery', async () => {
    const ctx = await setup();
    ctx.stack.as.override = onWellKnown(() => jsonReply(200, bigMetadata(ctx.stack.as.issuer)));
    await expectDiscoveryFailure(ctx, { code: 'response_too_large', stage: 'discovery', status: 200 });
    expect(ctx.stack.idp.requests).toEqual([]);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('IdP metadata over 256 KiB, streamed without Content-Length → response_too_large/discovery', async () => {
    const ctx = await setup();
    const big = await counting((_req, res) => streamJson(res, 300 * KiB, { issuer: 'placeholder' }));
    await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { issuer: big.url }) }),
      { code: 'response_too_large', stage: 'discovery', status: 200 },
      ctx.recorder,
    );
    expect(big.hits.every((h) => h.method === 'GET')).toBe(true);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('IdP token response over 64 KiB (Content-Length) → response_too_large/token_exchange', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() =>
      jsonReply(200, { access_token: jag, issued_token_type: ID_JAG_TYPE, token_type: 'N_A', padding: 'x'.repeat(70 * KiB) }),
    );
    await expectCaaError(call(ctx), { code: 'response_too_large', stage: 'token_exchange', status: 200 }, ctx.recorder);
    expect(ctx.stack.as.counters.grant).toBe(0);
    noTokenReachedMcp(ctx.stack);
  });

  it('IdP token response over 64 KiB, streamed without Content-Length → response_too_large/token_exchange', async () => {
    const ctx = await setup();
    const big = await counting((_req, res) => streamJson(res, 70 * KiB, { issued_token_type: ID_JAG_TYPE, token_type: 'N_A' }));
    await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { tokenEndpoint: `${big.url}/token` }) }),
      { code: 'response_too_large', stage: 'token_exchange', status: 200 },
      ctx.recorder,
    );
    expect(big.hits).toHaveLength(1);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('AS token response over 64 KiB → response_too_large/jwt_bearer; no token reaches the MCP server', async () => {
    const ctx = await setup();
    const token = 'oversized-response-access-token-1357';
    ctx.recorder.add(token);
    ctx.stack.as.override = onTokenPost(() =>
      jsonReply(200, { access_token: token, token_type: 'Bearer', expires_in: 3600, padding: 'x'.repeat(70 * KiB) }),
    );
    await expectCaaError(call(ctx), { code: 'response_too_large', stage: 'jwt_bearer', status: 200 }, ctx.recorder);
    noTokenReachedMcp(ctx.stack);
  });

  it('a token response just under 64 KiB is accepted', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() =>
      jsonReply(200, { access_token: jag, issued_token_type: ID_JAG_TYPE, token_type: 'N_A', padding: 'x'.repeat(60 * KiB) }),
    );
    await expectInitializeOk(await call(ctx));
  });
});

describe('timeouts and network failures', () => {
  it('timeout: an IdP token endpoint that never answers, timeout: 300 → retried twice, then timeout/token_exchange', async () => {
    const ctx = await setup();
    const hang = await hangingServer();
    await expectCaaError(
      call(ctx, { timeout: 300, idp: idpAt(ctx, { tokenEndpoint: `${hang.url}/token` }) }),
      { code: 'timeout', stage: 'token_exchange' },
      ctx.recorder,
    );
    expect(hang.hits.map((h) => `${h.method} ${h.path}`)).toEqual(['POST /token', 'POST /token', 'POST /token']);
    expect(ctx.recorder.events.filter((e) => e.type === 'retry').map((e) => e.type === 'retry' && [e.stage, e.code, e.attempt])).toEqual([
      ['token_exchange', 'timeout', 1],
      ['token_exchange', 'timeout', 2],
    ]);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('timeout: an AS token endpoint that never answers → both legs retried twice (a new ID-JAG each time), then timeout/jwt_bearer', async () => {
    const ctx = await setup();
    const hang = await hangingServer();
    ctx.stack.as.override = (req) =>
      req.method === 'GET' && req.path === '/.well-known/oauth-authorization-server'
        ? jsonReply(200, { issuer: ctx.stack.as.issuer, token_endpoint: `${hang.url}/token` })
        : undefined;
    await expectCaaError(call(ctx, { timeout: 300 }), { code: 'timeout', stage: 'jwt_bearer' }, ctx.recorder);
    expect(hang.hits.map((h) => `${h.method} ${h.path}`)).toEqual(['POST /token', 'POST /token', 'POST /token']);
    // Each grant attempt was preceded by its own exchange: a fresh ID-JAG every time.
    expect(ctx.stack.idp.counters.exchange).toBe(3);
    noTokenReachedMcp(ctx.stack);
  });

  it('timeout: IdP metadata that never answers, timeout: 300 → timeout/discovery; the ID token never left', async () => {
    const ctx = await setup();
    const hang = await hangingServer();
    await expectCaaError(
      call(ctx, { timeout: 300, idp: idpAt(ctx, { issuer: hang.url }) }),
      { code: 'timeout', stage: 'discovery' },
      ctx.recorder,
    );
    expect(hang.hits.every((h) => h.method === 'GET')).toBe(true);
  });

  it('connection refused at the IdP token endpoint → network_error/token_exchange', async () => {
    const ctx = await setup();
    const closed = await closedLoopbackUrl();
    const err = await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { tokenEndpoint: `${closed}/token` }) }),
      { code: 'network_error', stage: 'token_exchange' },
      ctx.recorder,
    );
    expect(err.status).toBeUndefined();
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('connection refused at the AS token endpoint → network_error/jwt_bearer', async () => {
    const ctx = await setup();
    const closed = await closedLoopbackUrl();
    ctx.stack.as.override = (req) =>
      req.method === 'GET' && req.path === '/.well-known/oauth-authorization-server'
        ? jsonReply(200, { issuer: ctx.stack.as.issuer, token_endpoint: `${closed}/token` })
        : undefined;
    await expectCaaError(call(ctx), { code: 'network_error', stage: 'jwt_bearer' }, ctx.recorder);
    noTokenReachedMcp(ctx.stack);
  });

  it('connection refused at the IdP issuer (metadata) → network_error/discovery', async () => {
    const ctx = await setup();
    const closed = await closedLoopbackUrl();
    await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { issuer: closed }) }),
      { code: 'network_error', stage: 'discovery' },
      ctx.recorder,
    );
    expect(ctx.stack.idp.requests).toEqual([]);
  });
});

describe('nock: non-loopback hosts and socket resets', () => {
  useNock();

  it('a socket reset at an https IdP token endpoint → network_error/token_exchange', async () => {
    const ctx = await setup();
    const scope = nock('https://idp.example.test')
      .post('/oauth2/v1/token')
      .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' });
    await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { tokenEndpoint: 'https://idp.example.test/oauth2/v1/token' }) }),
      { code: 'network_error', stage: 'token_exchange' },
      ctx.recorder,
    );
    expect(scope.isDone()).toBe(true);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('a socket reset at an https AS token endpoint → network_error/jwt_bearer', async () => {
    const ctx = await setup();
    ctx.stack.as.override = (req) =>
      req.method === 'GET' && req.path === '/.well-known/oauth-authorization-server'
        ? jsonReply(200, { issuer: ctx.stack.as.issuer, token_endpoint: 'https://as.example.test/token' })
        : undefined;
    let assertion: string | undefined;
    const scope = nock('https://as.example.test')
      .post('/token', (body: Record<string, string>) => {
        assertion = body.assertion;
        return true;
      })
      .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' });
    await expectCaaError(call(ctx), { code: 'network_error', stage: 'jwt_bearer' }, ctx.recorder);
    expect(scope.isDone()).toBe(true);
    expect(assertion && ctx.recorder.secrets.has(assertion)).toBe(true);
    noTokenReachedMcp(ctx.stack);
  });

  it('https IdP metadata naming an http:// token endpoint → insecure_url/discovery; the ID token is never posted', async () => {
    const ctx = await setup();
    const metadata = nock('https://idp.example.test')
      .get('/.well-known/openid-configuration')
      .reply(200, { issuer: 'https://idp.example.test', token_endpoint: 'http://idp.example.test/token' });
    const insecure = nock('http://idp.example.test').post('/token').reply(200, {});
    await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { issuer: 'https://idp.example.test' }) }),
      { code: 'insecure_url', stage: 'discovery' },
      ctx.recorder,
    );
    expect(metadata.isDone()).toBe(true);
    expect(insecure.isDone()).toBe(false);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('an https IdP answering 503 text/html → http_error with status 503, the page not quoted', async () => {
    const ctx = await setup();
    const scope = nock('https://idp.example.test')
      .post('/token')
      .times(3)
      .reply(503, '<html><body>Service Unavailable: upstream-cluster-7</body></html>', { 'content-type': 'text/html' });
    const err = await expectCaaError(
      call(ctx, { idp: idpAt(ctx, { tokenEndpoint: 'https://idp.example.test/token' }) }),
      { code: 'http_error', stage: 'token_exchange', status: 503 },
      ctx.recorder,
    );
    expect(err.message).not.toContain('upstream-cluster-7');
    expect(scope.pendingMocks().length).toBeLessThan(3);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });
});

describe('IdP and AS requests never carry cookies, MCP headers or caller headers', () => {
  const FORBIDDEN = ['cookie', 'mcp-protocol-version', 'mcp-session-id', 'x-caller-trace'];

  function expectClean(ctx: ErrorStackCtx): void {
    const all = [...ctx.stack.idp.requests, ...ctx.stack.as.requests];
    expect(all.length).toBeGreaterThan(0);
    for (const r of all) {
      for (const name of FORBIDDEN) expect(r.headers[name], `${name} sent to ${r.method} ${r.path}`).toBeUndefined();
      expect(String(r.headers.authorization ?? '')).not.toMatch(/^bearer/i);
    }
    expect(ctx.stack.idp.leaks()).toEqual([]);
    expect(ctx.stack.as.leaks()).toEqual([]);
  }

  it('through a real MCP SDK Client (StreamableHTTPClientTransport) with a Cookie in requestInit', async () => {
    const ctx = await setup();
    const authedFetch = withCrossAppAccess(ctx.recorder.fetch, {
      idToken: () => ctx.stack.idp.mintIdToken(),
      idp: idpAt(ctx, { issuer: ctx.stack.idp.issuer }),
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: AS_SECRET },
      onEvent: ctx.recorder.onEvent,
    });
    const client = new Client({ name: 'leak-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(ctx.stack.mcp.url), {
      fetch: authedFetch,
      requestInit: { headers: { cookie: 'session=caller-cookie-abc123', 'x-caller-trace': 'trace-42', 'mcp-session-id': 'caller-session-1' } },
    });
    await client.connect(transport);
    await client.listTools();
    // Make the next acquisition happen on a request that carries Mcp-Protocol-Version.
    ctx.stack.as.revokeAll();
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();

    expect(JSON.stringify(result)).toContain('sub=alice');
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    // The caller's headers did go to the MCP server, so their absence below is meaningful.
    const toMcp = ctx.stack.mcp.requests.filter((r) => r.path === '/mcp');
    expect(toMcp.every((r) => r.headers.cookie === 'session=caller-cookie-abc123' && r.headers['x-caller-trace'] === 'trace-42')).toBe(true);
    expect(toMcp.filter((r) => r.headers['mcp-protocol-version'] !== undefined).length).toBeGreaterThan(0);
    expectClean(ctx);
  });

  it('through a direct call with a Request carrying cookies, MCP headers and credentials: include', async () => {
    const ctx = await setup();
    const authedFetch = wrap(ctx, { idp: idpAt(ctx, { issuer: ctx.stack.idp.issuer }) });
    const init = initializeRequest({
      cookie: 'session=caller-cookie-xyz789',
      'mcp-protocol-version': '2025-11-25',
      'mcp-session-id': 'caller-session-2',
      'x-caller-trace': 'trace-43',
    });
    const response = await authedFetch(new Request(ctx.stack.mcp.url, { ...init, credentials: 'include' }));
    await expectInitializeOk(response);
    expect(ctx.stack.mcp.requests.at(-1)?.headers.cookie).toBe('session=caller-cookie-xyz789');
    expectClean(ctx);
  });
});
