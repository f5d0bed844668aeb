/**
 * The undici interceptor composed with undici's own interceptors (redirect, retry, cache, dns,
 * deduplicate), in both orders, with users from AsyncLocalStorage sharing one keep-alive connection,
 * against a real loopback resource that misbehaves (redirect loops, a bad Location, 503s, resets,
 * bodies after heads). An unhandled rejection fails the test that caused it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent, interceptors, request, util, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, CrossAppAccess, CrossAppAccessError, type CrossAppAccessEngineOptions } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { startMisbehavingResource, type MisbehavingResource } from './helpers/undici-resource.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

type Interceptor = Dispatcher.DispatcherComposeInterceptor;

let stack: Stack;
let rs: MisbehavingResource;
const agents: Dispatcher[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(async () => {
  process.on('unhandledRejection', onUnhandled);
  stack = await startStack();
  rs = await startMisbehavingResource(stack.as);
  stack.as.allowedResources = [rs.resource, localResource()];
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.destroy()));
  await Promise.all([stack.close(), rs.close()]);
  // Rejections left unhandled surface after a turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled.splice(0)).toEqual([]);
});

const users = new AsyncLocalStorage<string>();
const as = <T>(user: string | undefined, work: () => Promise<T>): Promise<T> => (user === undefined ? work() : users.run(user, work));

/** The same server under `localhost`, for the dns interceptor (which resolves it to 127.0.0.1). */
const localResource = () => rs.resource.replace('127.0.0.1', 'localhost');

function ours(overrides: Partial<CrossAppAccessEngineOptions> = {}): Interceptor {
  const xaa = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer },
    resource: rs.resource,
    ...overrides,
  });
  return crossAppAccessInterceptor(xaa, { user: () => users.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }) });
}

/** One Agent, one connection per origin: every user's requests share the same keep-alive socket. */
function agent(...chain: Interceptor[]): Dispatcher {
  return agentWith({ connections: 1 }, ...chain);
}

function agentWith(options: Agent.Options, ...chain: Interceptor[]): Dispatcher {
  const composed = new Agent(options).compose(releaseLateBodies, ...chain);
  agents.push(composed);
  return composed;
}

/**
 * Innermost, next to the connection: once a head that holds its body back (`x-late`) has been handled
 * by everything above, lets the server send the body, which then arrives in a later socket callback.
 */
const releaseLateBodies: Interceptor = (dispatch) => (opts, handler) =>
  dispatch(opts, {
    onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
    onRequestUpgrade: (controller, status, headers, socket) => handler.onRequestUpgrade?.(controller, status, headers, socket),
    onResponseStart(controller, status, headers, message) {
      handler.onResponseStart?.(controller, status, headers, message);
      const late = headers['x-late'];
      if (typeof late === 'string') rs.gate(late).open();
    },
    onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
    onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
    onResponseError: (controller, error) => handler.onResponseError?.(controller, error),
  });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { sub?: string; host?: string; path?: string; n?: number } | string;
}

async function get(dispatcher: Dispatcher, path: string, options: { headers?: Record<string, string>; signal?: AbortSignal; origin?: string } = {}): Promise<Answer> {
  const response = await request(`${options.origin ?? rs.origin}${path}`, { dispatcher, headers: options.headers, signal: options.signal });
  const text = await response.body.text();
  let body: Answer['body'] = text;
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    // not JSON: a 401's text
  }
  return { status: response.statusCode, headers: response.headers, body };
}

const subOf = (answer: Answer) => (typeof answer.body === 'string' ? undefined : answer.body.sub);
const redirectTo = (location: string) => `/mcp/hop?status=307&late=1&location=${encodeURIComponent(location)}`;

/** Bob opens the only connection; Alice's requests then arrive on Bob's socket. */
async function bobOpensTheConnection(dispatcher: Dispatcher, origin?: string): Promise<void> {
  expect(subOf(await as('bob', () => get(dispatcher, '/mcp/profile', { origin })))).toBe('bob');
  expect(subOf(await as('alice', () => get(dispatcher, '/mcp/profile', { origin })))).toBe('alice');
}

describe('one user per logical request (redirect and retry handlers re-dispatch from socket callbacks)', () => {
  it("a redirect hop inside the resource carries the request's user's token, not that of whoever opened the connection", async () => {
    const dispatcher = agent(ours(), interceptors.redirect({ maxRedirections: 3 }));
    await bobOpensTheConnection(dispatcher);
    const answer = await as('alice', () => get(dispatcher, redirectTo('/mcp/profile?hop=2')));
    expect(answer.status).toBe(200);
    expect(subOf(answer)).toBe('alice');
    expect(rs.seen.filter((r) => r.path.includes('hop=2')).map((r) => r.sub)).toEqual(['alice']);
  });

  it('a hop on a connection opened outside any user context is sent for the request\'s user, not refused with unknown_user', async () => {
    const dispatcher = agent(ours(), interceptors.redirect({ maxRedirections: 3 }));
    expect((await get(dispatcher, '/open')).status).toBe(200);
    const answer = await as('alice', () => get(dispatcher, redirectTo('/mcp/profile?hop=2')));
    expect(answer.status).toBe(200);
    expect(subOf(answer)).toBe('alice');
  });

  it('a redirect from outside the resource into it is sent for the user who made the request', async () => {
    const dispatcher = agent(ours(), interceptors.redirect({ maxRedirections: 3 }));
    await bobOpensTheConnection(dispatcher);
    const answer = await as('alice', () => get(dispatcher, `/open?status=307&late=1&location=${encodeURIComponent('/mcp/profile?hop=in')}`));
    expect(subOf(answer)).toBe('alice');
  });

  it('a retry after a reset is sent for the request\'s user, whoever opens the new connection', async () => {
    const dispatcher = agent(ours(), interceptors.retry({ minTimeout: 1, maxTimeout: 1 }));
    await bobOpensTheConnection(dispatcher);
    const answer = await as('alice', () => get(dispatcher, '/mcp/profile?reset=1&key=alice-reset'));
    expect(subOf(answer)).toBe('alice');
  });
});

describe("a caller's handler that throws never escapes (undici's redirect handler inside the resource)", () => {
  it('a redirect loop rejects the request with the redirect handler\'s error; the process and the Agent carry on', async () => {
    const dispatcher = agent(ours(), interceptors.redirect({ maxRedirections: 3 }));
    await bobOpensTheConnection(dispatcher);
    await expect(as('alice', () => get(dispatcher, '/mcp/loop?status=307&loop=1'))).rejects.toThrow(/redirect loop/i);
    await expect(as('alice', () => get(dispatcher, '/mcp/loop?status=307&loop=1&late=1'))).rejects.toThrow(/redirect loop/i);
    expect(subOf(await as('alice', () => get(dispatcher, '/mcp/profile')))).toBe('alice');
  });

  it('a malformed Location rejects the request; the process and the Agent carry on', async () => {
    const dispatcher = agent(ours(), interceptors.redirect({ maxRedirections: 3 }));
    await bobOpensTheConnection(dispatcher);
    await expect(as('alice', () => get(dispatcher, `/mcp/bad?status=307&location=${encodeURIComponent('http://[::1')}`))).rejects.toThrow();
    await expect(as('alice', () => get(dispatcher, `/mcp/bad?status=307&late=1&location=${encodeURIComponent('http://[::1')}`))).rejects.toThrow();
    expect(subOf(await as('bob', () => get(dispatcher, '/mcp/profile')))).toBe('bob');
  });

  it('a caller whose onResponseStart throws hears the error once in onResponseError, also on the engine\'s path (a cold request)', async () => {
    const dispatcher = agent(ours());
    for (const user of ['alice', 'alice']) {
      const heard: string[] = [];
      const boom = new Error('caller broke');
      await new Promise<void>((resolve) => {
        as(user, async () =>
          dispatcher.dispatch({ origin: rs.origin, path: '/mcp/profile?late=1', method: 'GET' }, {
            onRequestStart() {},
            onResponseStart() {
              heard.push('start');
              throw boom;
            },
            onResponseData: () => void heard.push('data'),
            onResponseEnd: () => void heard.push('end'),
            onResponseError(_controller, error) {
              heard.push(error === boom ? 'error' : `other: ${error.message}`);
              resolve();
            },
          }),
        );
      });
      expect(heard).toEqual(['start', 'error']);
    }
  });
});

/** What a caller in undici's core handler API heard, in order; `then` runs in its onComplete. */
interface CoreCall {
  heard: string[];
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A request by a caller in the handler API undici's core speaks (`onConnect`, `onHeaders`, …), as
 * `undici.request`, `stream`, `pipeline` and `fetch` make: `compose` wraps it for each interceptor,
 * and the interceptor relays it in that API. `misbehave` names the callback that throws or aborts.
 */
function coreCall(dispatcher: Dispatcher, path: string, misbehave?: { throwIn?: 'onHeaders' | 'onData' | 'onComplete'; abortIn?: 'onHeaders'; then?: () => void }): Promise<CoreCall> {
  return new Promise((resolve) => {
    const call: CoreCall = { heard: [], headers: {}, body: '' };
    const boom = new Error('caller broke');
    let abort: ((reason?: Error) => void) | undefined;
    const handler = {
      onConnect(a: (reason?: Error) => void) {
        abort = a;
      },
      onHeaders(status: number, raw: Buffer[]) {
        call.heard.push(`headers ${status}`);
        call.headers = util.parseHeaders(raw) as CoreCall['headers'];
        if (misbehave?.throwIn === 'onHeaders') throw boom;
        if (misbehave?.abortIn === 'onHeaders') abort!(new Error('caller gave up'));
        return true;
      },
      onData(chunk: Buffer) {
        call.body += chunk.toString();
        if (misbehave?.throwIn === 'onData') throw boom;
        return true;
      },
      onComplete() {
        call.heard.push('complete');
        if (misbehave?.throwIn === 'onComplete') throw boom;
        misbehave?.then?.();
        resolve(call);
      },
      onError(error: Error) {
        call.heard.push(error === boom ? 'error: caller broke' : `error: ${error.message}`);
        resolve(call);
      },
    };
    dispatcher.dispatch({ origin: rs.origin, path, method: 'GET' }, handler as unknown as Dispatcher.DispatchHandler);
  });
}

describe("callers in undici's core handler API (undici.request, fetch): relayed as they are, under the same contract", () => {
  it('a GET inside the resource reaches the server for its user; its answer is marked private, its body intact', async () => {
    const dispatcher = agent(ours());
    const call = await as('alice', () => coreCall(dispatcher, '/mcp/profile?cc=max-age%3D60&late=1'));
    expect(call.heard).toEqual(['headers 200', 'complete']);
    expect(call.headers['cache-control']).toBe('max-age=60, private');
    expect((JSON.parse(call.body) as { sub: string }).sub).toBe('alice');
  });

  it('a caller that throws from onHeaders, onData or onComplete hears its error once in onError; the Agent carries on', async () => {
    const dispatcher = agent(ours());
    for (const throwIn of ['onHeaders', 'onData', 'onComplete'] as const) {
      const call = await as('alice', () => coreCall(dispatcher, '/mcp/profile?late=1', { throwIn }));
      expect(call.heard).toEqual(throwIn === 'onComplete' ? ['headers 200', 'complete', 'error: caller broke'] : ['headers 200', 'error: caller broke']);
    }
    expect(subOf(await as('bob', () => get(dispatcher, '/mcp/profile')))).toBe('bob');
  });

  it('a caller that aborts with the function onConnect gave it hears the reason once, and nothing after', async () => {
    const dispatcher = agent(ours());
    const call = await as('alice', () => coreCall(dispatcher, '/mcp/profile?late=1', { abortIn: 'onHeaders' }));
    expect(call.heard).toEqual(['headers 200', 'error: caller gave up']);
    expect(subOf(await as('alice', () => get(dispatcher, '/mcp/profile')))).toBe('alice');
  });

  it("a caller that dispatches again from its callbacks, on Bob's connection, sends for its own user", async () => {
    const dispatcher = agent(ours());
    await bobOpensTheConnection(dispatcher);
    let again: Promise<CoreCall> | undefined;
    await as('alice', () => coreCall(dispatcher, '/mcp/profile?late=1', { then: () => (again = coreCall(dispatcher, '/mcp/profile?again=1')) }));
    const second = await again!;
    expect((JSON.parse(second.body) as { sub: string }).sub).toBe('alice');
    expect(rs.seen.filter((r) => r.path.includes('again=1')).map((r) => r.sub)).toEqual(['alice']);
  });
});

describe('interceptors.retry() composed after it', () => {
  it('a 503, then another, then 200: the caller gets the 200, every attempt for its own user', async () => {
    const dispatcher = agent(ours(), interceptors.retry({ minTimeout: 1, maxTimeout: 1 }));
    await bobOpensTheConnection(dispatcher);
    const answer = await as('alice', () => get(dispatcher, '/mcp/profile?fail=2&key=a503&late=1'));
    expect(answer.status).toBe(200);
    expect(subOf(answer)).toBe('alice');
    expect(rs.seen.filter((r) => r.path.includes('key=a503')).map((r) => r.sub)).toEqual(['alice', 'alice', 'alice']);
  });

  it('503 every time: the request settles with the retry handler\'s error', async () => {
    const dispatcher = agent(ours(), interceptors.retry({ minTimeout: 1, maxTimeout: 1, maxRetries: 2 }));
    const failure = await as('alice', () => get(dispatcher, '/mcp/profile?fail=100&key=always')).catch((e: unknown) => e);
    expect(failure).toMatchObject({ statusCode: 503 });
  });

  it('503 every time and the caller aborts: the request settles with the abort', async () => {
    const dispatcher = agent(ours(), interceptors.retry({ minTimeout: 1, maxTimeout: 1, maxRetries: 100_000, retryAfter: false }));
    const controller = new AbortController();
    const pending = as('alice', () => get(dispatcher, '/mcp/profile?fail=100&key=abort', { signal: controller.signal }));
    await waitFor(() => rs.seen.some((r) => r.path.includes('key=abort')));
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
  });
});

describe('caches and de-duplication never mix users (RFC 9111 §3.5)', () => {
  it('interceptors.cache() after it: Bob never gets Alice\'s cached answer, which is marked private', async () => {
    const dispatcher = agent(ours(), interceptors.cache());
    const alice = await as('alice', () => get(dispatcher, '/mcp/profile?cc=max-age%3D60'));
    expect(subOf(alice)).toBe('alice');
    expect(alice.headers['cache-control']).toBe('max-age=60, private');
    const bob = await as('bob', () => get(dispatcher, '/mcp/profile?cc=max-age%3D60'));
    expect(subOf(bob)).toBe('bob');
  });

  it('a server that says public, s-maxage or must-revalidate keeps its word', async () => {
    const dispatcher = agent(ours());
    for (const cc of ['public, max-age=60', 's-maxage=60', 'max-age=60, must-revalidate', 'no-store', 'private']) {
      const answer = await as('alice', () => get(dispatcher, `/mcp/profile?cc=${encodeURIComponent(cc)}`));
      expect(answer.headers['cache-control']).toBe(cc);
    }
    const qualified = await as('alice', () => get(dispatcher, `/mcp/profile?cc=${encodeURIComponent('private="set-cookie", max-age=60')}`));
    expect(qualified.headers['cache-control']).toBe('private="set-cookie", max-age=60, private');
    // A request outside the resource carried no token: its answer is as it came.
    const outside = await as('alice', () => get(dispatcher, '/open?cc=max-age%3D60'));
    expect(outside.headers['cache-control']).toBe('max-age=60');
    // A POST's answer is stored by no cache without explicit freshness (RFC 9110 §9.3.3): as it came;
    // with it, marked like any other.
    const post = async (path: string) => {
      const response = await as('alice', () => request(`${rs.origin}${path}`, { method: 'POST', body: '{}', dispatcher }));
      await response.body.dump();
      return response.headers['cache-control'];
    };
    expect(await post('/mcp/profile')).toBeUndefined();
    expect(await post('/mcp/profile?cc=max-age%3D60')).toBe('max-age=60, private');
  });

  it('interceptors.deduplicate() after it, with a user per request: refused with a typed error, never another user\'s answer', async () => {
    const dispatcher = agentWith({ connections: 4 }, ours(), interceptors.deduplicate());
    const gate = rs.gate('dedupe');
    const pending = [as('alice', () => get(dispatcher, '/mcp/profile?gate=dedupe')), as('bob', () => get(dispatcher, '/mcp/profile?gate=dedupe'))].map((p) => p.catch((e: unknown) => e));
    gate.open();
    const [alice, bob] = await Promise.all(pending);
    for (const result of [alice, bob]) {
      expect(result).toBeInstanceOf(ConfigurationError);
      expect((result as ConfigurationError).message).toMatch(/deduplicate/);
    }
    expect(rs.seen.filter((r) => r.path.includes('gate=dedupe'))).toEqual([]);
  });
});

describe("the caller's Host header and the token", () => {
  it('a Host naming another virtual host is dropped when the token is attached; one naming the target is kept', async () => {
    const dispatcher = agent(ours());
    const other = await as('alice', () => get(dispatcher, '/mcp/profile?h=1', { headers: { host: 'tenant-b.example' } }));
    expect(subOf(other)).toBe('alice');
    expect(rs.seen.at(-1)!.host).toBe(new URL(rs.origin).host);
    const same = await as('alice', () => get(dispatcher, '/mcp/profile?h=2', { headers: { Host: new URL(rs.origin).host } }));
    expect(subOf(same)).toBe('alice');
    expect(rs.seen.at(-1)!.host).toBe(new URL(rs.origin).host);
    // Outside the resource no token goes, and the caller's headers go as they are.
    await get(dispatcher, '/open', { headers: { host: 'tenant-b.example' } });
    expect(rs.seen.at(-1)!.host).toBe('tenant-b.example');
  });
});

// ---------------------------------------------------------------------------------------------
// The matrix: each neighbour, composed after (outside) and before (beneath) ours.

type Order = 'after' | 'before';
const compose = (order: Order, neighbour: Interceptor, mine: Interceptor = ours()) => (order === 'after' ? agent(mine, neighbour) : agent(neighbour, mine));

async function twoUsersConcurrently(dispatcher: Dispatcher, path = '/mcp/profile?late=1', origin?: string): Promise<void> {
  await bobOpensTheConnection(dispatcher, origin);
  const [alice, bob] = await Promise.all([as('alice', () => get(dispatcher, path, { origin })), as('bob', () => get(dispatcher, path, { origin }))]);
  expect([subOf(alice), subOf(bob)]).toEqual(['alice', 'bob']);
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

describe.each<Order>(['after', 'before'])('composition matrix: the neighbour composed %s it', (order) => {
  it('redirect: two users at once, hops inside the resource, a loop and a bad Location', async () => {
    const dispatcher = compose(order, interceptors.redirect({ maxRedirections: 3 }));
    await twoUsersConcurrently(dispatcher);
    const hop = await as('alice', () => get(dispatcher, redirectTo('/mcp/profile?hop=m')));
    const loop = await as('alice', () => get(dispatcher, '/mcp/loop?status=307&late=1&loop=1')).catch((e: unknown) => e);
    const bad = await as('bob', () => get(dispatcher, `/mcp/bad?status=307&location=${encodeURIComponent('http://[::1')}`)).catch((e: unknown) => e);
    if (order === 'after') {
      expect(subOf(hop)).toBe('alice');
      expect(loop).toBeInstanceOf(Error);
      expect(bad).toBeInstanceOf(Error);
    } else {
      // Beneath it, a request carrying a token is not followed: the 3xx comes back as it came.
      expect([hop.status, (loop as Answer).status, (bad as Answer).status]).toEqual([307, 307, 307]);
    }
    expect(subOf(await as('bob', () => get(dispatcher, '/mcp/profile')))).toBe('bob');
  });

  it('retry: two users at once, 503s then 200, a reset then 200', async () => {
    const dispatcher = compose(order, interceptors.retry({ minTimeout: 1, maxTimeout: 1 }));
    await twoUsersConcurrently(dispatcher);
    const unavailable = await as('alice', () => get(dispatcher, `/mcp/profile?fail=2&late=1&key=m503${order}`));
    expect([unavailable.status, subOf(unavailable)]).toEqual([200, 'alice']);
    const reset = await as('bob', () => get(dispatcher, `/mcp/profile?reset=1&key=mreset${order}`));
    expect([reset.status, subOf(reset)]).toEqual([200, 'bob']);
    expect(rs.seen.filter((r) => r.path.includes(`key=m503${order}`)).map((r) => r.sub)).toEqual(['alice', 'alice', 'alice']);
  });

  it('cache: each user gets their own answer to a cacheable GET', async () => {
    const dispatcher = compose(order, interceptors.cache());
    await twoUsersConcurrently(dispatcher, '/mcp/profile?cc=max-age%3D60');
    for (const user of ['alice', 'bob', 'alice']) expect(subOf(await as(user, () => get(dispatcher, '/mcp/profile?cc=max-age%3D60')))).toBe(user);
  });

  it('dns: beneath it, resolved after the token is attached; after it, the resolved origin is outside the resource: nothing is signed, and the 401 is a resource_mismatch saying where dns goes', async () => {
    const lookup = (_origin: URL, _opts: unknown, cb: (error: Error | null, addresses: Array<{ address: string; family: number }>) => void) => cb(null, [{ address: '127.0.0.1', family: 4 }]);
    const dispatcher = compose(order, interceptors.dns({ lookup: lookup as never, dualStack: false, affinity: 4 }), ours({ resource: localResource() }));
    const origin = new URL(localResource()).origin;
    if (order === 'before') {
      await twoUsersConcurrently(dispatcher, '/mcp/profile?late=1', origin);
      expect(rs.seen.at(-1)!.host).toBe(new URL(origin).host);
    } else {
      const error = await as('alice', () => get(dispatcher, '/mcp/profile', { origin })).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'resource_mismatch', status: 401 });
      expect((error as Error).message).toContain('dns');
      expect(rs.seen.every((r) => r.sub === undefined)).toBe(true);
    }
  });

  it('deduplicate: beneath it, concurrent requests of two users are two requests; after it, refused', async () => {
    // Several connections: the requests the gate holds must not wait for each other's socket.
    const dispatcher = order === 'after' ? agentWith({ connections: 4 }, ours(), interceptors.deduplicate()) : agentWith({ connections: 4 }, interceptors.deduplicate(), ours());
    const gate = rs.gate(`dedupe-${order}`);
    const path = `/mcp/profile?gate=dedupe-${order}`;
    const pending = ['alice', 'bob', 'alice'].map((user) => as(user, () => get(dispatcher, path)).catch((e: unknown) => e));
    if (order === 'before') await gate.arrived(2);
    gate.open();
    const results = await Promise.all(pending);
    if (order === 'before') {
      expect(results.map((r) => subOf(r as Answer))).toEqual(['alice', 'bob', 'alice']);
      expect(rs.seen.filter((r) => r.path === path).map((r) => r.sub).sort()).toEqual(['alice', 'bob']);
    } else {
      expect(results.every((r) => r instanceof CrossAppAccessError && r.code === 'invalid_option')).toBe(true);
    }
  });
});
