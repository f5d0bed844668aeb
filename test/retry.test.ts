/**
 * Transient failures of metadata, IdP and authorization-server requests are retried with jittered
 * back-off; OAuth 4xx answers never are; every jwt-bearer attempt carries a fresh ID-JAG
 * (MCP Enterprise-Managed Authorization §7.4.2).
 * Real loopback servers with request counters throughout; nock only for a
 * non-loopback host's socket errors. No sleeps and no timed assertions: waits the package makes
 * are either zero-length (`baseDelay: 0`), bounded by the default policy, or driven by fake timers.
 */
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CrossAppAccessError,
  withCrossAppAccess,
  type CrossAppAccessEvent,
  type CrossAppAccessOptions,
  type FetchLike,
} from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { jsonReply, startCountingServer, type CountingServer } from './helpers/errors.js';
import { ID_JAG_TYPE, mintJag } from './helpers/error-stack.js';
import { startStack, type Stack } from './servers/stack.js';
import type { OverrideHook, OverrideRequest, OverrideResponse } from './servers/http-util.js';
import { useNock } from './helpers/nock.js';

// nock activates itself on import; only the "network errors" block wants it.
nock.restore();

type RetryEvent = Extract<CrossAppAccessEvent, { type: 'retry' }>;

let stack: Stack;
const cleanups: (() => Promise<void>)[] = [];
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await Promise.all(cleanups.splice(0).map((close) => close()));
  await stack.close();
});

/** Retries without waiting: the back-off is zero, the retry count is the default (2). */
const INSTANT: CrossAppAccessOptions['retry'] = { baseDelay: 0 };

/** A wrapper around `stack` that records its events and every fetch it makes (synchronously, at call time). */
function client(overrides: Partial<CrossAppAccessOptions> = {}) {
  const events: CrossAppAccessEvent[] = [];
  const fetches: string[] = [];
  // Forwards to globalThis.fetch at call time, so nock (when active) sees the request.
  const recording: FetchLike = (url, init) => {
    fetches.push(`${init?.method ?? 'GET'} ${String(url)}`);
    return globalThis.fetch(url, init);
  };
  const authedFetch = withCrossAppAccess(
    recording,
    stackOptions(stack, {
      ...overrides,
      onEvent: (event) => {
        events.push(event);
        overrides.onEvent?.(event);
      },
    }),
  );
  return {
    call: (id = 1) => authedFetch(stack.mcp.url, listToolsInit(id)),
    events,
    retries: () => events.filter((e): e is RetryEvent => e.type === 'retry'),
    /** How many times the wrapper called fetch for `METHOD url` (counted before any I/O). */
    fetched: (method: string, url: string) => fetches.filter((f) => f === `${method} ${url}`).length,
  };
}

/** Awaits `work`, which must reject with a CrossAppAccessError, and returns that error. */
async function rejection(work: Promise<unknown>): Promise<CrossAppAccessError> {
  const outcome = await work.then(
    (value) => ({ rejected: false as const, value }),
    (error: unknown) => ({ rejected: true as const, error }),
  );
  if (!outcome.rejected) {
    const shown = outcome.value instanceof Response ? `a Response with status ${outcome.value.status}` : String(outcome.value);
    return expect.fail(`expected a CrossAppAccessError, but the call resolved with ${shown}`);
  }
  expect(outcome.error).toBeInstanceOf(CrossAppAccessError);
  return outcome.error as CrossAppAccessError;
}

async function expectOk(response: Response): Promise<void> {
  expect(response.status).toBe(200);
  const body = (await response.json()) as { result?: { tools?: unknown[] } };
  expect(Array.isArray(body.result?.tools)).toBe(true);
}

const isTokenPost = (req: OverrideRequest) => req.method === 'POST' && req.path.endsWith('/token');

/** An override that answers the first `n` token POSTs with `reply` and lets the server answer the rest. */
function failTokenPosts(n: number, reply: OverrideResponse | (() => OverrideResponse)): OverrideHook {
  let failed = 0;
  return (req) => {
    if (!isTokenPost(req) || failed >= n) return undefined;
    failed++;
    return typeof reply === 'function' ? reply() : reply;
  };
}

/** An override that answers the first `n` GETs of `path` with `reply`. */
function failGets(path: string, n: number, reply: OverrideResponse): OverrideHook {
  let failed = 0;
  return (req) => {
    if (req.method !== 'GET' || req.path !== path || failed >= n) return undefined;
    failed++;
    return reply;
  };
}

/** A non-JSON error page: the answer is an `http_error`, not an OAuth error. */
const page = (status: number, headers: Record<string, string> = {}): OverrideResponse => ({
  status,
  headers: { 'content-type': 'text/plain', ...headers },
  body: `HTTP ${status}`,
});

const tokenPosts = (server: { requests: { method: string; path: string; form: Record<string, string> }[] }) =>
  server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token'));

/** Lets pending I/O callbacks and microtasks run (not a sleep: setImmediate is never faked here). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Steps fake time to one millisecond short of `waitMs` (the request is still not repeated), then to
 * `waitMs` (it is): the wait is exactly the one announced.
 */
async function expectRepeatedAt(waitMs: number, sent: () => number, alsoJustBefore?: () => void): Promise<void> {
  await vi.advanceTimersByTimeAsync(waitMs - 1);
  await turns();
  expect(sent()).toBe(1);
  alsoJustBefore?.();
  await vi.advanceTimersByTimeAsync(1);
  // The repeat is real I/O after the timer (hashing, a socket): wait for it by the real clock
  // (performance.now is not faked), up to 10 s, since a loaded machine may need many turns.
  const deadline = performance.now() + 10_000;
  while (sent() < 2 && performance.now() < deadline) await turns(1);
  expect(sent()).toBe(2);
}

/** Claims of a compact JWT, unverified. */
function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('transient IdP token-endpoint failures are retried', () => {
  it('503 twice, then OK → success after exactly 3 exchange POSTs and two retry events (default policy)', async () => {
    stack.idp.override = failTokenPosts(2, page(503));
    const h = client();
    await expectOk(await h.call());
    expect(stack.idp.counters.exchange).toBe(3);
    expect(h.fetched('POST', stack.idp.tokenEndpoint)).toBe(3);
    expect(stack.as.counters.grant).toBe(1);
    expect(h.retries()).toMatchObject([
      { type: 'retry', stage: 'token_exchange', code: 'http_error', status: 503, attempt: 1, retriesLeft: 2 },
      { type: 'retry', stage: 'token_exchange', code: 'http_error', status: 503, attempt: 2, retriesLeft: 1 },
    ]);
    // Default back-off: baseDelay 250 ms doubling, each wait in [ceiling/2, ceiling].
    const [first, second] = h.retries().map((e) => e.delayMs);
    expect(first).toBeGreaterThanOrEqual(125);
    expect(first).toBeLessThanOrEqual(250);
    expect(second).toBeGreaterThanOrEqual(250);
    expect(second).toBeLessThanOrEqual(500);
    expect(h.events.filter((e) => e.type === 'token_issued')).toHaveLength(1);
  });

  it('503 three times → http_error/token_exchange/503 after exactly 3 attempts (default: 2 retries)', async () => {
    stack.idp.override = failTokenPosts(Infinity, page(503));
    const h = client();
    const error = await rejection(h.call());
    expect(error).toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 503 });
    expect(stack.idp.counters.exchange).toBe(3);
    expect(stack.as.counters.grant).toBe(0);
    expect(h.retries().map((e) => e.attempt)).toEqual([1, 2]);
    expect(h.events.filter((e) => e.type === 'failure')).toMatchObject([{ code: 'http_error', stage: 'token_exchange' }]);
  });

  it.each([
    ['retry: { retries: 0 }', { retries: 0 }],
    ['retry: false', false],
  ] as const)('%s → exactly 1 attempt, no retry event', async (_, retry) => {
    stack.idp.override = failTokenPosts(Infinity, page(503));
    const h = client({ retry });
    const error = await rejection(h.call());
    expect(error).toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 503 });
    expect(stack.idp.counters.exchange).toBe(1);
    expect(h.retries()).toEqual([]);
  });

  it('retry: { retries: 4 } and 5 failures → exactly 5 attempts, then the failure', async () => {
    stack.idp.override = failTokenPosts(5, page(503));
    const h = client({ retry: { retries: 4, baseDelay: 0 } });
    const error = await rejection(h.call());
    expect(error).toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 503 });
    expect(stack.idp.counters.exchange).toBe(5);
    expect(h.retries().map((e) => [e.attempt, e.retriesLeft])).toEqual([[1, 4], [2, 3], [3, 2], [4, 1]]);
  });

  it('retry: { retries: 4 } and 4 failures → success on the 5th attempt', async () => {
    stack.idp.override = failTokenPosts(4, page(503));
    const h = client({ retry: { retries: 4, baseDelay: 0 } });
    await expectOk(await h.call());
    expect(stack.idp.counters.exchange).toBe(5);
    expect(h.retries()).toHaveLength(4);
  });

  it.each([500, 502, 504, 429])('HTTP %i once, then OK → retried once', async (status) => {
    stack.idp.override = failTokenPosts(1, page(status));
    const h = client({ retry: INSTANT });
    await expectOk(await h.call());
    expect(stack.idp.counters.exchange).toBe(2);
    expect(h.retries()).toMatchObject([{ stage: 'token_exchange', code: 'http_error', status, attempt: 1 }]);
  });
});

describe('OAuth 4xx answers are never retried', () => {
  const cases = [
    { server: 'idp', status: 400, error: 'invalid_request', stage: 'token_exchange' },
    { server: 'idp', status: 401, error: 'invalid_client', stage: 'token_exchange' },
    { server: 'as', status: 401, error: 'invalid_client', stage: 'jwt_bearer' },
    { server: 'as', status: 400, error: 'invalid_scope', stage: 'jwt_bearer' },
    { server: 'as', status: 400, error: 'unauthorized_client', stage: 'jwt_bearer' },
  ] as const;

  it.each(cases)('$server answers $status $error → exactly 1 attempt, no retry event', async ({ server, status, error, stage }) => {
    stack[server].override = failTokenPosts(Infinity, jsonReply(status, { error, error_description: 'no' }));
    const h = client(); // the default policy: a retry would be visible in the counters
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'oauth_error', stage, status, error });
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(server === 'as' ? 1 : 0);
    expect(h.retries()).toEqual([]);
  });

  it('a redirect is final too: one attempt, never followed', async () => {
    const target = await startCountingServer();
    cleanups.push(() => target.close());
    stack.idp.override = failTokenPosts(Infinity, { status: 307, headers: { location: `${target.url}/token` }, body: '' });
    const h = client();
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'unexpected_redirect', stage: 'token_exchange', status: 307 });
    expect(stack.idp.counters.exchange).toBe(1);
    expect(target.hits).toEqual([]);
    expect(h.retries()).toEqual([]);
  });

  it.each([
    { server: 'idp', error: 'temporarily_unavailable', stage: 'token_exchange' },
    { server: 'idp', error: 'server_error', stage: 'token_exchange' },
    { server: 'as', error: 'temporarily_unavailable', stage: 'jwt_bearer' },
    { server: 'as', error: 'server_error', stage: 'jwt_bearer' },
  ] as const)('but $server 400 {error: $error} IS retried', async ({ server, error, stage }) => {
    stack[server].override = failTokenPosts(1, jsonReply(400, { error }));
    const h = client({ retry: INSTANT });
    await expectOk(await h.call());
    expect((server === 'idp' ? stack.idp.counters.exchange : stack.as.counters.grant)).toBe(2);
    expect(h.retries()).toMatchObject([{ stage, code: 'oauth_error', status: 400, attempt: 1 }]);
  });

  it('400 {error: "server_error"} every time → the OAuth error after 3 attempts', async () => {
    stack.idp.override = failTokenPosts(Infinity, jsonReply(400, { error: 'server_error' }));
    const h = client({ retry: INSTANT });
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'oauth_error', stage: 'token_exchange', status: 400, error: 'server_error' });
    expect(stack.idp.counters.exchange).toBe(3);
  });
});

describe('MCP Enterprise-Managed Authorization §7.4.2: every jwt-bearer attempt carries a fresh ID-JAG', () => {
  it('AS token endpoint 500 twice, then OK → 3 grant POSTs, 3 exchanges, 3 different assertions', async () => {
    stack.as.override = failTokenPosts(2, page(500));
    const h = client({ retry: INSTANT });
    await expectOk(await h.call());
    expect(stack.as.counters.grant).toBe(3);
    expect(stack.idp.counters.exchange).toBe(3);
    const assertions = tokenPosts(stack.as).map((r) => r.form.assertion ?? '');
    expect(assertions).toHaveLength(3);
    for (const assertion of assertions) expect(assertion.split('.')).toHaveLength(3);
    expect(new Set(assertions).size).toBe(3);
    // A lost attempt may have spent the jti: each ID-JAG has its own.
    expect(new Set(assertions.map((a) => claimsOf(a).jti)).size).toBe(3);
    expect(h.retries()).toMatchObject([
      { stage: 'jwt_bearer', code: 'http_error', status: 500, attempt: 1 },
      { stage: 'jwt_bearer', code: 'http_error', status: 500, attempt: 2 },
    ]);
  });

  it('AS 503 three times → http_error/jwt_bearer after 3 grants, each with its own ID-JAG', async () => {
    stack.as.override = failTokenPosts(Infinity, page(503));
    const h = client({ retry: INSTANT });
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'http_error', stage: 'jwt_bearer', status: 503 });
    expect(stack.as.counters.grant).toBe(3);
    expect(stack.idp.counters.exchange).toBe(3);
    expect(new Set(tokenPosts(stack.as).map((r) => r.form.assertion)).size).toBe(3);
  });

  it('AS 429 with Retry-After: 0 → retried at once, with a new ID-JAG', async () => {
    stack.as.override = failTokenPosts(1, page(429, { 'retry-after': '0' }));
    const h = client();
    await expectOk(await h.call());
    expect(stack.as.counters.grant).toBe(2);
    expect(stack.idp.counters.exchange).toBe(2);
    const [first, second] = tokenPosts(stack.as).map((r) => r.form.assertion);
    expect(first).not.toBe(second);
    expect(h.retries()).toMatchObject([{ stage: 'jwt_bearer', code: 'http_error', status: 429, delayMs: 0 }]);
  });
});

describe('metadata requests are retried', () => {
  const documents = [
    { name: 'protected-resource metadata 503', server: 'mcp', path: () => new URL(stack.mcp.prmUrl).pathname, status: 503 },
    { name: 'AS metadata 502', server: 'as', path: () => '/.well-known/oauth-authorization-server', status: 502 },
    { name: 'IdP metadata 503', server: 'idp', path: () => '/.well-known/openid-configuration', status: 503 },
  ] as const;

  it.each(documents)('$name once, then OK → success; that URL fetched twice', async ({ server, path, status }) => {
    const target = stack[server];
    const url = path();
    target.override = failGets(url, 1, page(status));
    const h = client({ retry: INSTANT });
    await expectOk(await h.call());
    const gets = (target.requests as { method: string; path: string }[]).filter((r) => r.method === 'GET' && r.path === url);
    expect(gets).toHaveLength(2);
    expect(h.retries()).toMatchObject([{ stage: 'discovery', code: 'http_error', status, attempt: 1 }]);
  });

  it('AS metadata 502 every time → http_error/discovery after exactly 3 GETs; no exchange', async () => {
    const url = '/.well-known/oauth-authorization-server';
    stack.as.override = failGets(url, Infinity, page(502));
    // With `resource` the server is known to be ours, so the failure is the caller's to see.
    const h = client({ retry: INSTANT, resource: stack.mcp.resource });
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'http_error', stage: 'discovery', status: 502 });
    expect(stack.as.requests.filter((r) => r.path === url)).toHaveLength(3);
    expect(stack.idp.counters.exchange).toBe(0);
  });

  it('a metadata 404 is not retried (the next well-known URL is tried instead)', async () => {
    // An IdP that serves only RFC 8414 metadata: its OpenID Discovery URL, tried first, answers 404, once.
    const document = await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).text();
    stack.idp.reset();
    stack.idp.override = (req) => {
      if (req.method !== 'GET') return undefined;
      if (req.path === '/.well-known/openid-configuration') return { status: 404, body: 'no' };
      if (req.path === '/.well-known/oauth-authorization-server') return { status: 200, headers: { 'content-type': 'application/json' }, body: document };
      return undefined;
    };
    const h = client();
    await h.call().then((r) => r.body?.cancel());
    expect(stack.idp.requests.filter((r) => r.path === '/.well-known/openid-configuration')).toHaveLength(1);
    expect(h.retries()).toEqual([]);
  });
});

describe('network errors and timeouts are retried', () => {
  useNock();

  const TOKEN_ENDPOINT = 'https://idp.example.test/token';

  it('a socket error twice at an https IdP token endpoint, then an ID-JAG → success after 3 hits', async () => {
    const jag = await mintJag(stack);
    const scope = nock('https://idp.example.test')
      .post('/token')
      .times(2)
      .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' })
      .post('/token')
      .reply(200, { issued_token_type: ID_JAG_TYPE, access_token: jag, token_type: 'N_A', expires_in: 300 });
    const h = client({ idp: { tokenEndpoint: TOKEN_ENDPOINT, clientId: stack.idp.clientId }, retry: INSTANT });
    await expectOk(await h.call());
    expect(scope.isDone()).toBe(true);
    expect(h.fetched('POST', TOKEN_ENDPOINT)).toBe(3);
    expect(h.retries()).toMatchObject([
      { stage: 'token_exchange', code: 'network_error', attempt: 1 },
      { stage: 'token_exchange', code: 'network_error', attempt: 2 },
    ]);
    expect(tokenPosts(stack.as).map((r) => r.form.assertion)).toEqual([jag]);
  });

  it('a socket error three times → network_error/token_exchange after 3 hits', async () => {
    const scope = nock('https://idp.example.test')
      .post('/token')
      .times(3)
      .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' });
    const h = client({ idp: { tokenEndpoint: TOKEN_ENDPOINT, clientId: stack.idp.clientId }, retry: INSTANT });
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'network_error', stage: 'token_exchange' });
    expect(scope.isDone()).toBe(true);
    expect(h.fetched('POST', TOKEN_ENDPOINT)).toBe(3);
    expect(stack.as.counters.grant).toBe(0);
  });

  it('a token endpoint that does not answer within `timeout` → a timeout, retried; the next attempt succeeds', async () => {
    let server!: CountingServer;
    server = await startCountingServer(async (_req, res) => {
      if (server.hits.length === 2) return; // the second exchange is never answered
      const jag = await mintJag(stack); // a fresh jti each time: the AS refuses a replayed one
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issued_token_type: ID_JAG_TYPE, access_token: jag, token_type: 'N_A', expires_in: 300 }));
    });
    cleanups.push(() => server.close());
    const h = client({ idp: { tokenEndpoint: `${server.url}/token`, clientId: stack.idp.clientId }, timeout: 500, retry: INSTANT });
    // Warm-up: discovery is cached and connections are open, so only the exchange can be slow below.
    await expectOk(await h.call(1));
    expect(h.retries()).toEqual([]);
    stack.as.revokeAll(); // the next request gets a 401 and acquires again
    await expectOk(await h.call(2));
    expect(server.hits.map((hit) => hit.method)).toEqual(['POST', 'POST', 'POST']);
    expect(h.retries().filter((e) => e.stage === 'token_exchange')).toMatchObject([{ code: 'timeout', attempt: 1 }]);
  });
});

describe('Retry-After is honoured (fake timers)', () => {
  /** A wrapper whose first `retry` event resolves the returned promise. */
  function clientAwaitingRetry(overrides: Partial<CrossAppAccessOptions> = {}) {
    let resolve!: (event: RetryEvent) => void;
    const retried = new Promise<RetryEvent>((r) => (resolve = r));
    const h = client({ ...overrides, onEvent: (e) => e.type === 'retry' && resolve(e) });
    return { ...h, retried };
  }

  /** Starts the request; the rejection (if any) is observed later, never left unhandled. */
  function start(h: ReturnType<typeof client>): Promise<Response> {
    const pending = h.call();
    pending.catch(() => undefined);
    return pending;
  }

  it('429 with Retry-After: 1 → the retry waits exactly 1000 ms, then succeeds', async () => {
    stack.idp.override = failTokenPosts(1, page(429, { 'retry-after': '1' }));
    // Only setTimeout/clearTimeout and Date: sockets, setImmediate and AbortSignal.timeout stay real.
    // Faked after the stack started; p-retry and src/retry.ts read the global setTimeout at call time.
    // Date with them: the endpoint's Retry-After hold ends by the wall clock, which the wait advances.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const h = clientAwaitingRetry();
    const pending = start(h);
    const event = await h.retried; // the 429 has been answered and the wait scheduled
    expect(event).toMatchObject({ stage: 'token_exchange', code: 'http_error', status: 429, attempt: 1, delayMs: 1000 });
    expect(stack.idp.counters.exchange).toBe(1);

    await expectRepeatedAt(1000, () => h.fetched('POST', stack.idp.tokenEndpoint), () => expect(stack.idp.counters.exchange).toBe(1));
    await expectOk(await pending);
    expect(stack.idp.counters.exchange).toBe(2);
    expect(h.retries()).toHaveLength(1);
  });

  it('503 with an HTTP-date Retry-After (now + 2 s) → the retry waits until that date', async () => {
    // An HTTP-date has 1 s resolution, so with a running clock the wait would be anywhere in
    // (1000 - latency, 2000]. The clock is frozen at a whole second so the wait is exact.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Math.floor(Date.now() / 1000) * 1000 });
    stack.idp.override = failTokenPosts(1, () => page(503, { 'retry-after': new Date(Date.now() + 2000).toUTCString() }));
    const h = clientAwaitingRetry();
    const pending = start(h);
    const event = await h.retried;
    expect(event).toMatchObject({ stage: 'token_exchange', code: 'http_error', status: 503, attempt: 1 });
    expect(event.delayMs).toBeGreaterThanOrEqual(1000);
    expect(event.delayMs).toBeLessThanOrEqual(2000);
    expect(event.delayMs).toBe(2000);

    await expectRepeatedAt(2000, () => h.fetched('POST', stack.idp.tokenEndpoint));
    await expectOk(await pending);
    expect(stack.idp.counters.exchange).toBe(2);
  });

  it('Retry-After: 120 with the default maxDelay (30 s) → not retried: fails at once with retryAfter 120', async () => {
    stack.idp.override = failTokenPosts(Infinity, page(429, { 'retry-after': '120' }));
    const h = client();
    const err = await rejection(h.call());
    expect(err).toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 429, retryAfter: 120 });
    expect(stack.idp.counters.exchange).toBe(1);
    expect(h.retries()).toEqual([]);
  });

  it('Retry-After: 120 with maxDelay 200000 → waited for (120 s of fake time), then retried', async () => {
    stack.idp.override = failTokenPosts(1, page(429, { 'retry-after': '120' }));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const h = clientAwaitingRetry({ retry: { maxDelay: 200_000 } });
    const pending = start(h);
    expect(await h.retried).toMatchObject({ status: 429, delayMs: 120_000 });
    await expectRepeatedAt(120_000, () => h.fetched('POST', stack.idp.tokenEndpoint));
    await expectOk(await pending);
    expect(stack.idp.counters.exchange).toBe(2);
  });

  it('a metadata 503 with Retry-After: 1 waits 1000 ms too', async () => {
    const url = '/.well-known/oauth-authorization-server';
    stack.as.override = failGets(url, 1, page(503, { 'retry-after': '1' }));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const h = clientAwaitingRetry();
    const pending = start(h);
    expect(await h.retried).toMatchObject({ stage: 'discovery', status: 503, delayMs: 1000 });
    await expectRepeatedAt(1000, () => h.fetched('GET', `${stack.as.issuer}${url}`));
    await expectOk(await pending);
    expect(stack.as.requests.filter((r) => r.path === url)).toHaveLength(2);
  });
});

describe('back-off without Retry-After is jittered within the policy', () => {
  const policy = { retries: 2, baseDelay: 100, maxDelay: 1000 };

  it('baseDelay 100 → the waits are in [50, 100] then [100, 200]', async () => {
    stack.idp.override = failTokenPosts(2, page(503));
    const h = client({ retry: policy });
    await expectOk(await h.call());
    const [first, second] = h.retries().map((e) => e.delayMs);
    expect(h.retries()).toHaveLength(2);
    expect(first).toBeGreaterThanOrEqual(50);
    expect(first).toBeLessThanOrEqual(100);
    expect(second).toBeGreaterThanOrEqual(100);
    expect(second).toBeLessThanOrEqual(200);
  });

  it.each([
    { random: 0, waits: [50, 100] }, // the lower edge of each window: ceiling / 2
    { random: 0.5, waits: [75, 150] },
    { random: 0.999999, waits: [100, 200] }, // the upper edge: the ceiling itself
  ])('Math.random() = $random → waits $waits (the jitter spans the half window)', async ({ random, waits }) => {
    vi.spyOn(Math, 'random').mockReturnValue(random);
    stack.idp.override = failTokenPosts(2, page(503));
    const h = client({ retry: policy });
    await expectOk(await h.call());
    expect(h.retries().map((e) => e.delayMs)).toEqual(waits);
  });

  it('maxDelay caps the back-off ceiling: baseDelay 100, maxDelay 150 → the second wait is at most 150', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    stack.idp.override = failTokenPosts(2, page(503));
    const h = client({ retry: { retries: 2, baseDelay: 100, maxDelay: 150 } });
    await expectOk(await h.call());
    expect(h.retries().map((e) => e.delayMs)).toEqual([100, 150]);
  });
});

describe('no timers are left behind', () => {
  it('after a request that failed after retries, no timer of the package is still pending', async () => {
    // Every setTimeout the package makes during the request, with where it was made.
    const made: { timer: ReturnType<typeof setTimeout>; stack: string }[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const counting = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = realSetTimeout(callback, ms, ...args);
      made.push({ timer, stack: new Error().stack ?? '' });
      return timer;
    }) as unknown as typeof setTimeout;
    const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

    stack.idp.override = failTokenPosts(Infinity, page(503));
    const h = client({ retry: { retries: 2, baseDelay: 20 } });
    await h.call(0).catch(() => undefined); // warm-up: discovery, connections (not counted)
    stack.idp.reset();

    const before = activeTimeouts();
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(counting);
    const err = await rejection(h.call(1));
    vi.mocked(globalThis.setTimeout).mockRestore();
    await turns();
    const after = activeTimeouts();

    expect(err).toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 503 });
    expect(stack.idp.counters.exchange).toBe(3);
    expect(h.retries().filter((e) => e.delayMs > 0).length).toBeGreaterThanOrEqual(2);
    expect(after - before).toBeLessThanOrEqual(0);
    // The two back-off waits (and the idToken timeout) were made through the global setTimeout...
    const ours = made.filter((m) => /[\\/]src[\\/]/.test(m.stack));
    expect(ours.length).toBeGreaterThanOrEqual(2);
    // ...and every one of them has fired or been cleared (Node marks a finished Timeout `_destroyed`).
    expect(ours.filter((m) => !(m.timer as unknown as { _destroyed: boolean })._destroyed).map((m) => m.stack.split('\n')[2]?.trim())).toEqual([]);
  });
});
