/**
 * The token lifecycle under traffic (DESIGN "What a request goes through"): renewal ahead of expiry,
 * 401 storms and stragglers, step-up, ID-token reasons, cancellation, bodies. Real loopback servers
 * with request counters; time is an injectable clock, never a sleep.
 */
import { gate } from './helpers/gate.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CrossAppAccessError,
  withCrossAppAccess,
  type CrossAppAccessEvent,
  type CrossAppAccessOptions,
  type FetchLike,
  type IdTokenReason,
} from '../src/index.js';
import { startResourceServer, type ResourceServer } from './helpers/resource-server.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let clock: number;
const now = () => clock;

beforeEach(async () => {
  stack = await startStack();
  clock = Date.UTC(2026, 10, 22, 12, 0, 0);
});
afterEach(async () => {
  await stack.close();
});


function options(overrides: Partial<CrossAppAccessOptions> = {}): CrossAppAccessOptions {
  return stackOptions(stack, { resource: stack.mcp.resource, now, ...overrides });
}

const bearers = () => stack.mcp.requests.map((r) => r.authorization).filter((a): a is string => a !== undefined);

describe('renewal ahead of expiry', () => {
  it('crossing the renewal window under steady traffic renews once in the background; no request waits; the old token is never rejected', async () => {
    stack.as.accessTokenTtlSeconds = 120; // window: max(60 s, 10 %) capped at half = 60 s
    const reasons: IdTokenReason[] = [];
    const renewal = gate();
    const events: CrossAppAccessEvent[] = [];
    const start = clock;
    // The server stops accepting the first token from t = 90 s (its own clock would say 120 s).
    let firstToken: string | undefined;
    let rejectedOld = 0;
    stack.mcp.override = (req) => {
      const auth = req.headers.authorization;
      if (clock - start >= 90_000 && auth === firstToken) {
        rejectedOld++;
        return { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: '' };
      }
      return undefined;
    };
    const authedFetch = withCrossAppAccess(
      fetch,
      options({
        idToken: async ({ reason }) => {
          reasons.push(reason);
          if (reason === 'renewal') await renewal.promise;
          return stack.idp.mintIdToken();
        },
        onEvent: (e) => events.push(e),
      }),
    );
    const call = (i: number) => authedFetch(stack.mcp.url, listToolsInit(i));

    expect((await call(0)).status).toBe(200);
    firstToken = bearers()[0];
    clock = start + 59_000;
    for (let i = 1; i <= 5; i++) expect((await call(i)).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(1);

    clock = start + 61_000; // inside the window: renewal starts, the valid token keeps being served
    const during = await Promise.all(Array.from({ length: 20 }, (_, i) => call(100 + i)));
    expect(during.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(reasons).toEqual(['initial', 'renewal']); // one renewal, still waiting for its ID token
    expect(stack.idp.counters.exchange).toBe(1);
    expect(new Set(bearers())).toEqual(new Set([firstToken]));

    renewal.open();
    await vi.waitFor(() => expect(events.some((e) => e.type === 'token_renewed')).toBe(true));
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.as.counters.grant).toBe(2);

    clock = start + 100_000;
    expect((await call(200)).status).toBe(200);
    expect(bearers().at(-1)).not.toBe(firstToken);
    expect(rejectedOld).toBe(0); // no 401 round trip: the renewed token was already in place
    expect(events.filter((e) => e.type === 'token_issued')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'token_renewed')).toHaveLength(1);
  });

  it('renewBefore sets the window: with 10 s on a 120 s token, renewal starts after 110 s, not before', async () => {
    stack.as.accessTokenTtlSeconds = 120;
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ renewBefore: 10_000, onEvent: (e) => events.push(e) }));
    const start = clock;
    await authedFetch(stack.mcp.url, listToolsInit(1));
    clock = start + 105_000;
    await authedFetch(stack.mcp.url, listToolsInit(2));
    expect(stack.idp.counters.exchange).toBe(1);
    clock = start + 111_000;
    await authedFetch(stack.mcp.url, listToolsInit(3));
    await vi.waitFor(() => expect(events.some((e) => e.type === 'token_renewed')).toBe(true));
    expect(stack.idp.counters.exchange).toBe(2);
  });

  it('a response without expires_in gets defaultTokenLifetime (here 10 min: renewal from 9 min on)', async () => {
    stack.as.override = (req) =>
      req.method === 'POST'
        ? {
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              access_token: stack.as.issueAccessToken({ sub: 'alice', clientId: 'mcp-client', resource: stack.mcp.resource, scopes: [] }),
              token_type: 'Bearer',
            }),
          }
        : undefined;
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ defaultTokenLifetime: 600_000, onEvent: (e) => events.push(e) }));
    const start = clock;
    await authedFetch(stack.mcp.url, listToolsInit(1));
    expect(events.find((e) => e.type === 'token_issued')).toMatchObject({ expiresIn: 600 });
    clock = start + 539_000;
    await authedFetch(stack.mcp.url, listToolsInit(2));
    expect(stack.idp.counters.exchange).toBe(1);
    clock = start + 541_000;
    await authedFetch(stack.mcp.url, listToolsInit(3));
    await vi.waitFor(() => expect(stack.idp.counters.exchange).toBe(2));
  });

  it('a token past its expiry is never sent: the request waits for a new one', async () => {
    stack.as.accessTokenTtlSeconds = 120;
    const authedFetch = withCrossAppAccess(fetch, options());
    const start = clock;
    await authedFetch(stack.mcp.url, listToolsInit(1));
    const first = bearers()[0];
    clock = start + 121_000;
    expect((await authedFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(2);
    expect(bearers()[1]).not.toBe(first);
  });

  it('a failed background renewal keeps serving the valid token and is tried again later, not on every request', async () => {
    stack.as.accessTokenTtlSeconds = 120;
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ retry: false, onEvent: (e) => events.push(e) }));
    const start = clock;
    await authedFetch(stack.mcp.url, listToolsInit(1));
    stack.idp.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    clock = start + 70_000;
    for (let i = 0; i < 10; i++) expect((await authedFetch(stack.mcp.url, listToolsInit(10 + i))).status).toBe(200);
    await vi.waitFor(() => expect(events.some((e) => e.type === 'failure')).toBe(true));
    for (let i = 0; i < 10; i++) expect((await authedFetch(stack.mcp.url, listToolsInit(20 + i))).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(2); // the first, and one failed renewal
    stack.idp.override = undefined;
    clock = start + 80_000; // the pause after a failure is over
    await authedFetch(stack.mcp.url, listToolsInit(30));
    await vi.waitFor(() => expect(events.some((e) => e.type === 'token_renewed')).toBe(true));
    expect(stack.idp.counters.exchange).toBe(3);
  });
});

describe('401 storms and stragglers', () => {
  it('a revoked token hit by 50 concurrent calls => exactly 1 more acquisition and 50 successes', async () => {
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ onEvent: (e) => events.push(e) }));
    expect((await authedFetch(stack.mcp.url, listToolsInit(0))).status).toBe(200);
    stack.as.revokeAll();
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => authedFetch(stack.mcp.url, listToolsInit(i + 1))));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.as.counters.grant).toBe(2);
    expect(events.filter((e) => e.type === 'token_invalidated')).toHaveLength(1);
  });

  it('a 401 for a token that was already replaced retries with the new one and acquires nothing', async () => {
    const held = gate();
    let holdNext401 = false;
    let heldResponse: Response | undefined;
    // Holds back the first 401 answer until the other request has replaced the token.
    const slowFetch: FetchLike = async (url, init) => {
      const response = await fetch(url, init);
      if (response.status === 401 && holdNext401) {
        holdNext401 = false;
        heldResponse = response;
        await held.promise;
      }
      return response;
    };
    const authedFetch = withCrossAppAccess(slowFetch, options());
    expect((await authedFetch(stack.mcp.url, listToolsInit(0))).status).toBe(200);
    stack.as.revokeAll();
    holdNext401 = true;
    const straggler = authedFetch(stack.mcp.url, listToolsInit(1));
    await vi.waitFor(() => expect(heldResponse).toBeDefined());
    expect((await authedFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200); // replaces the token
    expect(stack.idp.counters.exchange).toBe(2);
    held.open();
    expect((await straggler).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(2); // the straggler's 401 caused no acquisition
  });
});

describe('403 insufficient_scope step-up (MCP authorization spec, "Step-Up Authorization Flow")', () => {
  it('acquires with the union of the current and challenged scopes, retries once, and keeps the wider token', async () => {
    stack.mcp.requiredScopes = ['files:write'];
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options({ scope: 'files:read', onEvent: (e) => events.push(e) }));
    expect((await authedFetch(stack.mcp.url, listToolsInit(1))).status).toBe(200);
    expect(stack.mcp.counters.forbidden).toBe(1);
    const exchanges = stack.idp.requests.filter((r) => r.method === 'POST').map((r) => r.form.scope);
    expect(exchanges).toEqual(['files:read', 'files:read files:write']);
    expect(events.filter((e) => e.type === 'step_up')).toEqual([
      expect.objectContaining({ challenged: 'files:write', scope: 'files:read files:write' }),
    ]);
    expect((await authedFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(stack.mcp.counters.forbidden).toBe(1); // later requests use the stepped-up token
    expect(stack.idp.counters.exchange).toBe(2);
  });

  it('a server that asks for more forever: at most maxStepUps (2) step-ups, each the union so far, then its 403 as it came', async () => {
    let n = 0;
    stack.mcp.override = (req) =>
      req.headers.authorization
        ? { status: 403, headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="s${n++}"` }, body: 'more' }
        : undefined;
    const authedFetch = withCrossAppAccess(fetch, options({ scope: 'a' }));
    const response = await authedFetch(stack.mcp.url, listToolsInit(1));
    expect(response.status).toBe(403);
    expect(await response.text()).toBe('more');
    expect(stack.idp.requests.filter((r) => r.method === 'POST').map((r) => r.form.scope)).toEqual(['a', 'a s0', 'a s0 s1']);
    expect(stack.idp.counters.exchange).toBe(3); // 3 authorization attempts in all
  });

  it('maxStepUps: 0 returns the first 403 untouched', async () => {
    stack.mcp.requiredScopes = ['files:write'];
    const authedFetch = withCrossAppAccess(fetch, options({ scope: 'files:read', maxStepUps: 0 }));
    expect((await authedFetch(stack.mcp.url, listToolsInit(1))).status).toBe(403);
    expect(stack.idp.counters.exchange).toBe(1);
  });

  it('an IdP that narrows the scope ends the step-up with a typed insufficient_scope error', async () => {
    stack.mcp.requiredScopes = ['files:write'];
    stack.idp.grantScopes = (requested) => requested.filter((s) => s !== 'files:write');
    const authedFetch = withCrossAppAccess(fetch, options({ scope: 'files:read' }));
    const error = await authedFetch(stack.mcp.url, listToolsInit(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject({ code: 'insufficient_scope', stage: 'token_exchange' });
    expect((error as Error).message).toContain('files:write');
    expect(stack.as.counters.grant).toBe(1); // the narrowed ID-JAG was not redeemed
  });

  it('a 403 that is not insufficient_scope is returned untouched, with no acquisition', async () => {
    stack.mcp.override = (req) =>
      req.headers.authorization ? { status: 403, headers: { 'www-authenticate': 'Bearer error="access_denied"' }, body: 'no' } : undefined;
    const authedFetch = withCrossAppAccess(fetch, options());
    const response = await authedFetch(stack.mcp.url, listToolsInit(1));
    expect(response.status).toBe(403);
    expect(await response.text()).toBe('no');
    expect(stack.idp.counters.exchange).toBe(1);
  });

  it('the retried 403 and 401 answers have their bodies cancelled, so connections are freed', async () => {
    stack.mcp.requiredScopes = ['files:write'];
    const answered: Response[] = [];
    const recording: FetchLike = async (url, init) => {
      const response = await fetch(url, init);
      answered.push(response);
      return response;
    };
    const authedFetch = withCrossAppAccess(recording, options({ scope: 'files:read' }));
    await authedFetch(stack.mcp.url, listToolsInit(1));
    stack.as.revokeAll();
    await authedFetch(stack.mcp.url, listToolsInit(2));
    const retried = answered.filter((r) => r.status === 401 || r.status === 403);
    expect(retried.map((r) => r.status)).toEqual([403, 401]);
    expect(retried.every((r) => r.bodyUsed)).toBe(true);
  });
});

describe('budgets and failed step-ups', () => {
  it('a step-up the IdP refuses does not spoil the resource for requests that need less', async () => {
    stack.mcp.override = (req) => {
      if (req.headers['x-op'] !== 'admin') return undefined;
      const token = String(req.headers.authorization ?? '').replace('Bearer ', '');
      const scopes = stack.as.verifyAccessToken(token)?.scopes ?? [];
      return scopes.includes('admin') ? undefined : { status: 403, headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="files:read admin"' }, body: '' };
    };
    stack.idp.override = (req) =>
      req.method === 'POST' && (req.form.scope ?? '').includes('admin')
        ? { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_scope' }) }
        : undefined;
    const authedFetch = withCrossAppAccess(fetch, options({ scope: 'files:read' }));
    const init = (id: number, op?: string) => ({ ...listToolsInit(id), headers: { ...(listToolsInit(id).headers as Record<string, string>), ...(op ? { 'x-op': op } : {}) } });
    expect((await authedFetch(stack.mcp.url, init(1))).status).toBe(200);
    await expect(authedFetch(stack.mcp.url, init(2, 'admin'))).rejects.toMatchObject({ code: 'oauth_error', error: 'invalid_scope' });
    expect((await authedFetch(stack.mcp.url, init(3))).status).toBe(200);
    expect((await authedFetch(stack.mcp.url, init(4))).status).toBe(200);
    expect(stack.idp.requests.filter((r) => r.method === 'POST').map((r) => r.form.scope)).toEqual(['files:read', 'admin files:read']);
  });

  it('403, 403, then 401: after two step-ups the 401 is returned (3 authorization attempts in all)', async () => {
    let n = 0;
    stack.mcp.override = (req) => {
      if (!req.headers.authorization) return undefined;
      n++;
      return n <= 2
        ? { status: 403, headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="s${n}"` }, body: '' }
        : { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: 'expired' };
    };
    const response = await withCrossAppAccess(fetch, options({ scope: 'a' }))(stack.mcp.url, listToolsInit(1));
    expect(response.status).toBe(401);
    expect(stack.as.counters.grant).toBe(3);
  });

  it('401 then 403: one re-acquisition and one step-up, then the 403 as it came', async () => {
    let n = 0;
    stack.mcp.override = (req) => {
      if (!req.headers.authorization) return undefined;
      n++;
      return n === 1
        ? { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: '' }
        : { status: 403, headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="s${n}"` }, body: 'forbidden' };
    };
    const response = await withCrossAppAccess(fetch, options({ scope: 'a' }))(stack.mcp.url, listToolsInit(1));
    expect(response.status).toBe(403);
    expect(stack.as.counters.grant).toBe(3);
  });

  it('an AS that keeps failing with 503: 3 grant attempts and 3 exchanges in all, not retries times retries', async () => {
    stack.as.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    const authedFetch = withCrossAppAccess(fetch, options({ retry: { retries: 2, baseDelay: 1 } }));
    await expect(authedFetch(stack.mcp.url, listToolsInit(1))).rejects.toMatchObject({ code: 'http_error', stage: 'jwt_bearer', status: 503 });
    expect(stack.as.counters.grant).toBe(3);
    expect(stack.idp.counters.exchange).toBe(3);
  });

  it('an IdP that keeps failing with 503: 3 exchanges in all', async () => {
    stack.idp.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    const authedFetch = withCrossAppAccess(fetch, options({ retry: { retries: 2, baseDelay: 1 } }));
    await expect(authedFetch(stack.mcp.url, listToolsInit(1))).rejects.toMatchObject({ code: 'http_error', stage: 'token_exchange' });
    expect(stack.idp.counters.exchange).toBe(3);
  });
});

describe('the ID token source', () => {
  it('idToken gets { reason, signal }: initial, then renewal, then rejected after an IdP invalid_grant', async () => {
    const calls: Array<{ reason: IdTokenReason; signal: unknown }> = [];
    let rejectNext = false;
    stack.idp.override = (req) => {
      if (req.method !== 'POST' || !rejectNext) return undefined;
      rejectNext = false;
      return { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_grant' }) };
    };
    const authedFetch = withCrossAppAccess(fetch, options({ idToken: (ctx) => { calls.push(ctx); return stack.idp.mintIdToken(); } }));
    await authedFetch(stack.mcp.url, listToolsInit(1));
    stack.as.revokeAll();
    rejectNext = true;
    expect((await authedFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(calls.map((c) => c.reason)).toEqual(['initial', 'renewal', 'rejected']);
    expect(calls.every((c) => c.signal instanceof AbortSignal)).toBe(true);
  });
});

describe('cancellation', () => {
  it('an abandoned acquisition still fills the cache for the next request', async () => {
    const idTokenGate = gate();
    let asked = 0;
    const authedFetch = withCrossAppAccess(
      fetch,
      options({ idToken: async () => { asked++; await idTokenGate.promise; return stack.idp.mintIdToken(); } }),
    );
    const controller = new AbortController();
    const abandoned = authedFetch(stack.mcp.url, { ...listToolsInit(1), signal: controller.signal });
    await vi.waitFor(() => expect(asked).toBe(1)); // the acquisition is under way
    controller.abort(new Error('user closed the tab'));
    await expect(abandoned).rejects.toThrow('user closed the tab');
    idTokenGate.open();
    await vi.waitFor(() => expect(stack.as.counters.grant).toBe(1));
    expect((await authedFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.mcp.requests.filter((r) => r.authorization)).toHaveLength(1); // the abandoned one never went out
  });

  it('a caller aborting while a 401 re-acquisition is under way leaves the other callers unaffected', async () => {
    const renewal = gate();
    let renewing = false;
    const authedFetch = withCrossAppAccess(
      fetch,
      options({
        idToken: async ({ reason }) => {
          if (reason === 'renewal') {
            renewing = true;
            await renewal.promise;
          }
          return stack.idp.mintIdToken();
        },
      }),
    );
    await authedFetch(stack.mcp.url, listToolsInit(0));
    stack.as.revokeAll();
    const controller = new AbortController();
    const leaving = authedFetch(stack.mcp.url, { ...listToolsInit(1), signal: controller.signal });
    const staying = Array.from({ length: 10 }, (_, i) => authedFetch(stack.mcp.url, listToolsInit(i + 2)));
    await vi.waitFor(() => expect(renewing).toBe(true));
    controller.abort(new Error('gone'));
    await expect(leaving).rejects.toThrow('gone');
    renewal.open();
    expect((await Promise.all(staying)).map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(stack.idp.counters.exchange).toBe(2);
  });
});

describe('request bodies are replayed as they were', () => {
  let rs: ResourceServer;
  beforeEach(async () => {
    rs = await startResourceServer(stack.as);
    stack.as.allowedResources = [stack.mcp.resource, rs.resource];
  });
  afterEach(async () => {
    await rs.close();
  });

  /** A wrapper with a cached token; the next request's token is then rejected once. */
  async function warmedUp(overrides: Partial<CrossAppAccessOptions> = {}) {
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: rs.resource, client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer }, ...overrides }));
    expect((await authedFetch(rs.resource, { method: 'POST', body: 'warm' })).status).toBe(200);
    let rejectOnce = true;
    rs.rejectToken = () => {
      const reject = rejectOnce;
      rejectOnce = false;
      return reject;
    };
    return authedFetch;
  }

  const bytes = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));
  const bodies: Array<[string, () => BodyInit]> = [
    ['string', () => 'a string body ✓'],
    ['Uint8Array', () => bytes],
    ['ArrayBuffer', () => bytes.slice().buffer],
    ['URLSearchParams', () => new URLSearchParams({ a: '1', b: 'two words' })],
    ['Blob', () => new Blob([bytes], { type: 'application/octet-stream' })],
    [
      'ReadableStream',
      () =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(bytes.subarray(0, 100));
            c.enqueue(bytes.subarray(100));
            c.close();
          },
        }),
    ],
  ];

  it.each(bodies)('a %s body arrives byte-identical on the retry after a 401', async (_name, body) => {
    const authedFetch = await warmedUp();
    const response = await authedFetch(rs.resource, { method: 'POST', body: body(), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    const [rejected, retried] = rs.received.slice(-2);
    expect(rejected?.authorization).not.toBe(retried?.authorization);
    expect(retried?.bytes.length).toBeGreaterThan(0);
    expect(retried?.bytes.equals(rejected!.bytes)).toBe(true);
  });

  it('a FormData body is replayed with the same fields', async () => {
    const authedFetch = await warmedUp();
    const form = new FormData();
    form.set('field', 'value');
    form.set('file', new Blob(['file content']), 'a.txt');
    expect((await authedFetch(rs.resource, { method: 'POST', body: form })).status).toBe(200);
    const [rejected, retried] = rs.received.slice(-2).map((r) => r.bytes.toString('utf8').replace(/-{2,}[\w-]+/g, '--boundary'));
    expect(retried).toContain('file content');
    expect(retried).toBe(rejected);
  });

  it('a Request with a stream body is replayed and the caller’s Request is not consumed', async () => {
    const authedFetch = await warmedUp();
    const request = new Request(rs.resource, { method: 'POST', body: new Blob([bytes]).stream(), duplex: 'half' } as RequestInit);
    expect((await authedFetch(request)).status).toBe(200);
    expect(request.bodyUsed).toBe(false);
    const [rejected, retried] = rs.received.slice(-2);
    expect(retried?.bytes.equals(rejected!.bytes)).toBe(true);
  });

  it('a stream of exactly 1 MiB is replayed; 1 MiB + 1 byte gets the 401 back with no retry', async () => {
    const streamOf = (size: number) => new Blob([new Uint8Array(size).fill(42)]).stream();
    let authedFetch = await warmedUp();
    expect((await authedFetch(rs.resource, { method: 'POST', body: streamOf(1024 * 1024), duplex: 'half' } as RequestInit)).status).toBe(200);
    expect(rs.received.at(-1)?.bytes.length).toBe(1024 * 1024);

    authedFetch = await warmedUp();
    const before = stack.idp.counters.exchange;
    const response = await authedFetch(rs.resource, { method: 'POST', body: streamOf(1024 * 1024 + 1), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(401);
    expect(rs.received.at(-1)?.bytes.length).toBe(1024 * 1024 + 1); // it was sent whole, once
    expect(stack.idp.counters.exchange).toBe(before);
  });

  it('a 401 on a body that cannot be replayed still drops the stale token, so the next request gets a new one', async () => {
    const authedFetch = await warmedUp({ maxReplayBodyBytes: 10 });
    const rejected = await authedFetch(rs.resource, { method: 'POST', body: new Blob(['eleven byte']).stream(), duplex: 'half' } as RequestInit);
    expect(rejected.status).toBe(401);
    const stale = rs.received.at(-1)?.authorization;
    const before = rs.received.length;
    expect((await authedFetch(rs.resource, { method: 'POST', body: 'small' })).status).toBe(200);
    expect(rs.received.length).toBe(before + 1); // no 401 round trip
    expect(rs.received.at(-1)?.authorization).not.toBe(stale);
  });

  it('maxReplayBodyBytes sets the cap', async () => {
    const authedFetch = await warmedUp({ maxReplayBodyBytes: 10 });
    const stream = new Blob(['eleven byte']).stream();
    expect((await authedFetch(rs.resource, { method: 'POST', body: stream, duplex: 'half' } as RequestInit)).status).toBe(401);
  });
});
