/**
 * Hostile conditions and edge cases: aborts, leaked bodies, echoed secrets, huge
 * lifetimes, first-use binding, learned scopes, non-loopback http. Real loopback servers throughout;
 * nock only for a non-loopback host.
 */
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess, type CrossAppAccessOptions, type FetchLike } from '../src/index.js';
import { listToolsInit, MCP_HEADERS, stackOptions } from './helpers/stack-options.js';
import { startHttpServer } from './servers/http-util.js';
import { startStack, type Stack } from './servers/stack.js';
import { eventLoopTurns, unhandledRejectionsDuring } from './helpers/unhandled.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  nock.cleanAll();
  nock.enableNetConnect();
  await stack.close();
});

const listTools = listToolsInit;
const options = (overrides: Partial<CrossAppAccessOptions> = {}) => stackOptions(stack, overrides);


describe('cancellation edge cases', () => {
  it('an already-aborted signal rejects at once, and a shared discovery that fails later is not an unhandled rejection', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({
      resource: stack.mcp.resource,
      // An AS that does not exist: its metadata request fails after the caller has left.
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: 'http://127.0.0.1:1' },
    }));
    const reason = new Error('already gone');
    const unhandled = await unhandledRejectionsDuring(async () => {
      await expect(authedFetch(stack.mcp.url, { ...listTools(), signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      // The same discovery, awaited by a caller that stays, fails with a typed error.
      await expect(authedFetch(stack.mcp.url, listTools())).rejects.toMatchObject({ code: 'network_error', stage: 'discovery' });
    });
    expect(unhandled).toEqual([]);
  });

  it('a stream body that never ends is given up when the caller aborts', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull: () => new Promise<void>(() => undefined), // never produces, never ends
      cancel: () => {
        cancelled = true;
      },
    });
    const controller = new AbortController();
    const pending = authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half', signal: controller.signal } as RequestInit);
    const reason = new Error('stop waiting for the body');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(cancelled).toBe(true);
    expect(stack.mcp.counters.requests).toBe(0);
  });
});

describe('connections are freed', () => {
  it('a 401 whose re-acquisition fails has its body cancelled before the error is thrown', async () => {
    const responses: Response[] = [];
    const recording: FetchLike = async (url, init) => {
      const response = await fetch(url, init);
      if (String(url).startsWith(stack.mcp.url)) responses.push(response);
      return response;
    };
    const authedFetch = withCrossAppAccess(recording, options({ resource: stack.mcp.resource }));
    expect((await authedFetch(stack.mcp.url, listTools())).status).toBe(200);
    stack.as.revokeAll();
    stack.idp.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    await expect(authedFetch(stack.mcp.url, listTools(2))).rejects.toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 503 });
    const rejected = responses.at(-1);
    expect(rejected?.status).toBe(401);
    expect(rejected?.bodyUsed).toBe(true); // cancelled, so undici can reuse or close the socket
  });
});

describe('secrets a server echoes back', () => {
  it('an AS error_description that quotes our assertion and secret is redacted in the error, its JSON and events', async () => {
    const events: unknown[] = [];
    const sent: string[] = [];
    stack.as.override = (req) => {
      if (req.method !== 'POST') return undefined;
      sent.push(req.form.assertion ?? '');
      return {
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: 'invalid_request', error_description: `bad assertion ${req.form.assertion} with secret mcp-secret`, error_uri: `https://as.example/e?a=${req.form.assertion}` }),
      };
    };
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource, onEvent: (e) => events.push(e) }));
    const error = await authedFetch(stack.mcp.url, listTools()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    const serialised = JSON.stringify([error, (error as Error).message, events]);
    expect(sent[0]?.length).toBeGreaterThan(20);
    expect(serialised).not.toContain(sent[0]);
    expect(serialised).not.toContain('mcp-secret');
    expect((error as CrossAppAccessError).errorDescription).toBe('bad assertion [redacted] with secret [redacted]');
  });
});

describe('hostile token lifetimes', () => {
  it('a huge expires_in is clamped, so the token is still cached (not re-acquired on every request)', async () => {
    stack.as.override = undefined;
    const original = stack.as.accessTokenTtlSeconds;
    stack.as.accessTokenTtlSeconds = 1e306;
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    for (let i = 0; i < 3; i++) await authedFetch(stack.mcp.url, listTools(i));
    stack.as.accessTokenTtlSeconds = original;
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.idp.counters.exchange).toBe(1);
  });
});

describe('first-use binding (MCP authorization spec, "Authorization Server Binding")', () => {
  it('a server whose AS has no valid metadata does not lock the credentials to that AS', async () => {
    const broken = await startStack({ mcp: { prmOverrides: { authorization_servers: ['http://127.0.0.1:1'] } } });
    try {
      const diagnostics: string[] = [];
      const authedFetch = withCrossAppAccess(fetch, options({ onEvent: (e) => e.type === 'diagnostic' && diagnostics.push(e.message) }));
      // Not known to be ours (no `resource`): its 401 comes back as it came, with the reason.
      expect((await authedFetch(broken.mcp.url, listTools())).status).toBe(401);
      expect(diagnostics.join('\n')).toContain('(network_error:');
      expect((await authedFetch(stack.mcp.url, listTools())).status).toBe(200);
    } finally {
      await broken.close();
    }
  });

  it('once bound, a resource guarded by another AS gets issuer_not_allowed and nothing is sent there', async () => {
    const other = await startStack();
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      expect((await authedFetch(stack.mcp.url, listTools())).status).toBe(200);
      // Without `resource`, another AS's server is not ours: its 401 comes back untouched.
      expect((await authedFetch(other.mcp.url, listTools())).status).toBe(401);
      expect(other.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
      expect(other.as.counters.grant).toBe(0);
      expect(other.idp.counters.exchange).toBe(0);
      expect(stack.idp.counters.exchange).toBe(1);
    } finally {
      await other.close();
    }
  });
});

describe('scopes learned from the server (MCP authorization spec, "Scope Selection Strategy")', () => {
  it('openid and offline_access from scopes_supported are never requested', async () => {
    const learning = await startStack({ mcp: { scopesSupported: ['openid', 'offline_access', 'files:read'] } });
    try {
      const authedFetch = withCrossAppAccess(fetch, stackOptions(learning));
      expect((await authedFetch(learning.mcp.url, listTools())).status).toBe(200);
      const exchange = learning.idp.requests.find((r) => r.method === 'POST');
      const grant = learning.as.requests.find((r) => r.method === 'POST');
      expect(exchange?.form.scope).toBe('files:read');
      expect(grant?.form.scope).toBe('files:read');
    } finally {
      await learning.close();
    }
  });

  it('the challenge scope wins over scopes_supported', async () => {
    const challenged = await startStack({ mcp: { scopesSupported: ['files:read', 'files:write'], challengeScope: 'files:write' } });
    try {
      const authedFetch = withCrossAppAccess(fetch, stackOptions(challenged));
      expect((await authedFetch(challenged.mcp.url, listTools())).status).toBe(200);
      expect(challenged.idp.requests.find((r) => r.method === 'POST')?.form.scope).toBe('files:write');
    } finally {
      await challenged.close();
    }
  });
});

describe('URLs a token may never go to', () => {
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

describe('requests to servers not known to be protected go out at once', () => {
  it('a stream body is not held back: the server can answer before the stream ends', async () => {
    const server = await startHttpServer((_req, res) => void res.writeHead(200).end('early answer'));
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      let close!: () => void;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('first chunk'));
          close = () => controller.close();
        },
      });
      // Buffering the body before sending would wait for the stream to end, which only happens after.
      const response = await authedFetch(`${server.url}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('early answer');
      close();
    } finally {
      await server.close();
    }
  }, 5_000);

  it('a stream body to an MCP server not yet learned is replayed after the 401 challenge', async () => {
    const authedFetch = withCrossAppAccess(fetch, options());
    const bytes = new TextEncoder().encode(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 7));
        controller.enqueue(bytes.subarray(7));
        controller.close();
      },
    });
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('whoami');
    expect(stack.mcp.counters.unauthorized).toBe(1);
  });
});

describe('cold start', () => {
  it('IdP discovery runs alongside the MCP server’s and the authorization server’s, not after them', async () => {
    let idpAsked!: () => void;
    const idpMetadataRequested = new Promise<void>((resolve) => (idpAsked = resolve));
    // The AS metadata answer is held until the IdP's metadata has been asked for: run one after the
    // other, the two discoveries would wait on each other forever.
    const overlapping: FetchLike = async (url, init) => {
      const href = String(url);
      if (href.startsWith(stack.idp.issuer) && href.includes('/.well-known/')) idpAsked();
      if (href.startsWith(stack.as.issuer) && href.includes('/.well-known/')) await idpMetadataRequested;
      return fetch(url, init);
    };
    const authedFetch = withCrossAppAccess(overlapping, options());
    expect((await authedFetch(stack.mcp.url, listTools())).status).toBe(200);
    expect(stack.idp.counters.metadata).toBe(1);
  }, 5_000);
});

describe('the caller’s headers', () => {
  const forms: Array<[string, () => HeadersInit]> = [
    ['a plain object with a mixed-case Authorization', () => ({ ...MCP_HEADERS, Authorization: 'Basic c2VjcmV0', 'x-keep': 'kept' })],
    ['pairs', () => [...Object.entries(MCP_HEADERS), ['AUTHORIZATION', 'Basic c2VjcmV0'], ['x-keep', 'kept']] as [string, string][]],
    ['a Headers object', () => new Headers({ ...MCP_HEADERS, authorization: 'Basic c2VjcmV0', 'x-keep': 'kept' })],
  ];

  it.each(forms)('%s: our Bearer replaces the caller’s Authorization, the rest is sent, and the caller’s headers are untouched', async (_name, make) => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    const headers = make();
    const before = JSON.stringify(headers instanceof Headers ? [...headers] : headers);
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) });
    expect(response.status).toBe(200);
    const seen = stack.mcp.requests.at(-1);
    expect(seen?.authorization).toMatch(/^Bearer [\w-]+$/);
    expect(seen?.headers['x-keep']).toBe('kept');
    expect(JSON.stringify(headers instanceof Headers ? [...headers] : headers)).toBe(before);
  });
});

describe('other clients, servers that move, bodies past the cap', () => {
  it('headers given as a Map (or another library’s Headers) are all sent, with our Bearer', async () => {
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    const headers = new Map(Object.entries({ ...MCP_HEADERS, 'x-keep': 'kept', authorization: 'Basic c2VjcmV0' }));
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: headers as unknown as HeadersInit, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) });
    expect(response.status).toBe(200);
    const seen = stack.mcp.requests.at(-1);
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers['x-keep']).toBe('kept');
    expect(seen?.authorization).toMatch(/^Bearer /);
  });

  it('a 401 returned to the caller starts no acquisition nobody waits for', async () => {
    stack.mcp.override = (req) => (req.headers.authorization ? { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: '' } : undefined);
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    for (let i = 0; i < 5; i++) expect((await authedFetch(stack.mcp.url, listTools(i))).status).toBe(401);
    await eventLoopTurns(5);
    expect(stack.idp.counters.exchange).toBe(6); // the first token, then one re-acquisition per request
  });

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

  it('a stream body past the cap is cancelled when the acquisition fails before it was sent', async () => {
    stack.idp.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource, maxReplayBodyBytes: 10, retry: false }));
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('twenty bytes of body'));
      },
      cancel() {
        cancelled = true;
      },
    });
    await expect(authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half' } as RequestInit)).rejects.toMatchObject({ code: 'http_error' });
    await vi.waitFor(() => expect(cancelled).toBe(true));
  });
});
