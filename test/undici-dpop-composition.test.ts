/**
 * Attacks on DPoP through the undici interceptor composed with undici's own interceptors, two users
 * sharing one keep-alive socket: a redirect hop never carries the other user's token or a proof bound
 * to it (RFC 9449 §4.2 `ath`), a retried attempt never replays a proof's `jti` (§11.1), a cached
 * DPoP-bound answer is private (RFC 9111 §5.2.2.7), and a caller's own DPoP/Authorization headers
 * never go out twice.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { dpopEngineOptions, startDpopStack, type DpopResource } from './helpers/dpop-resource.js';
import type { Stack } from './servers/stack.js';

type Interceptor = Dispatcher.DispatcherComposeInterceptor;
const cleanups: (() => Promise<void>)[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
let stack: Stack;
let rs: DpopResource;

beforeEach(async () => {
  process.on('unhandledRejection', onUnhandled);
  ({ stack, rs } = await startDpopStack(cleanups));
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled.splice(0)).toEqual([]);
});

const users = new AsyncLocalStorage<string>();
const ours = (): Interceptor =>
  crossAppAccessInterceptor(new CrossAppAccess(dpopEngineOptions(stack, rs)), { user: () => users.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }) });
function agent(...chain: Interceptor[]): Dispatcher {
  const composed = new Agent({ connections: 1 }).compose(...chain);
  cleanups.push(() => composed.destroy());
  return composed;
}
async function get(dispatcher: Dispatcher, path: string, user: string, headers?: Record<string, string | string[]> | string[]) {
  return users.run(user, async () => {
    const response = await request(`${rs.origin}${path}`, { dispatcher, headers: headers as never });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text };
  });
}
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const athOf = (authorization: string) => createHash('sha256').update(authorization.split(' ')[1]!).digest('base64url');
const subOf = (authorization: string) => stack.as.verifyAccessToken(authorization.split(' ')[1]!)?.sub;

describe('DPoP with undici interceptors, two users on one socket', () => {
  it('redirect above it: every hop carries its own user\'s DPoP token and a proof whose ath is that token\'s', async () => {
    rs.redirects.set('/mcp/a', { status: 307, location: '/mcp/b' });
    const dispatcher = agent(ours(), interceptors.redirect({ maxRedirections: 3 }));
    const answers = await Promise.all([get(dispatcher, '/mcp/a', 'bob'), get(dispatcher, '/mcp/a', 'alice'), get(dispatcher, '/mcp/a', 'bob')]);
    expect(answers.map((a) => [a.status, JSON.parse(a.text).sub])).toEqual([
      [200, 'bob'],
      [200, 'alice'],
      [200, 'bob'],
    ]);
    const hops = rs.inResource();
    expect(hops.length).toBe(6);
    for (const hop of hops) {
      expect(hop.authorization).toMatch(/^DPoP /);
      expect(claimsOf(hop.dpop!).ath).toBe(athOf(hop.authorization!));
    }
    expect(hops.filter((h) => h.path === '/mcp/b').map((h) => subOf(h.authorization!)).sort()).toEqual(['alice', 'bob', 'bob']);
    expect(new Set(hops.map((h) => claimsOf(h.dpop!).jti)).size).toBe(6);
  });

  it('retry after it on a 503 then 200: each attempt is a new dispatch with a new proof, no jti sent twice, one token', async () => {
    const dispatcher = agent(ours(), interceptors.retry({ minTimeout: 1, maxTimeout: 1, statusCodes: [503] }));
    await get(dispatcher, '/mcp/warm', 'bob');
    const answer = await get(dispatcher, '/mcp/x?fail=1&key=after', 'alice');
    const attempts = rs.inResource().filter((h) => h.url.includes('key=after'));
    expect(attempts.map((h) => [h.status, subOf(h.authorization!)])).toEqual([
      [503, 'alice'],
      [200, 'alice'],
    ]);
    expect(new Set(attempts.map((h) => claimsOf(h.dpop!).jti)).size).toBe(2);
    expect(answer.status).toBe(200);
    expect(stack.as.counters.grant).toBe(2);
  });

  // A retry beneath the interceptor re-sends the signed request as is, so its proof's jti goes out
  // twice (RFC 9449 §11.1) and the server refuses it (invalid_dpop_proof): that is a refused proof,
  // not a refused token, so one more try with a new proof follows and the token is kept.
  it('retry beneath it on a 503 then 200: the replayed proof is refused, one new proof follows, no new token', async () => {
    const dispatcher = agent(interceptors.retry({ minTimeout: 1, maxTimeout: 1, statusCodes: [503] }), ours());
    await get(dispatcher, '/mcp/warm', 'bob');
    const grants = stack.as.counters.grant;
    const answer = await get(dispatcher, '/mcp/x?fail=1&key=beneath', 'alice');
    const attempts = rs.inResource().filter((h) => h.url.includes('key=beneath'));
    const jtis = attempts.map((h) => claimsOf(h.dpop!).jti);
    expect(attempts.map((h) => h.status)).toEqual([503, 401, 200]);
    expect(jtis[1]).toBe(jtis[0]);
    expect(jtis[2]).not.toBe(jtis[0]);
    expect(answer.status).toBe(200);
    expect(stack.as.counters.grant - grants).toBe(1); // alice's one token, not a second
  });

  it('cache after it: a DPoP-bound answer is marked private, Bob never gets Alice\'s', async () => {
    const dispatcher = agent(ours(), interceptors.cache());
    const alice = await get(dispatcher, '/mcp/p?cc=max-age%3D60', 'alice');
    expect(alice.headers['cache-control']).toBe('max-age=60, private');
    const bob = await get(dispatcher, '/mcp/p?cc=max-age%3D60', 'bob');
    expect(JSON.parse(bob.text).sub).toBe('bob');
  });

  it('a caller\'s own DPoP and Authorization, as an object with arrays or a flat array, are replaced: one of each goes out', async () => {
    const dispatcher = agent(ours());
    const forms: (Record<string, string | string[]> | string[])[] = [
      { DPoP: ['forged-1', 'forged-2'], Authorization: ['Bearer x', 'DPoP y'] },
      ['dpop', 'forged', 'DPoP', 'forged-again', 'authorization', 'Bearer x', 'Authorization', 'DPoP y'],
    ];
    for (const headers of forms) {
      const mutable = headers;
      const pending = get(dispatcher, '/mcp/h', 'alice', mutable);
      // Mutating the caller's headers after dispatch changes nothing that is sent.
      if (Array.isArray(mutable)) mutable.push('dpop', 'late');
      else mutable['dpop'] = 'late';
      expect((await pending).status).toBe(200);
    }
    for (const hit of rs.inResource()) {
      expect(hit.authorization).toMatch(/^DPoP [^,]+$/);
      expect(hit.dpop).not.toMatch(/forged|late|,/);
    }
  });

  it('a caller that aborts while the proof is being signed: one rejection with its reason, nothing unhandled, the Agent carries on', async () => {
    const dispatcher = agent(ours());
    await get(dispatcher, '/mcp/warm', 'alice');
    const waits: ((abort: () => void) => void)[] = [(abort) => abort(), (abort) => queueMicrotask(abort), (abort) => setImmediate(abort), (abort) => setTimeout(abort, 1)];
    for (const [i, wait] of waits.entries()) {
      const controller = new AbortController();
      const reason = new Error(`caller gave up ${i}`);
      const settled = users.run('alice', () => request(`${rs.resource}/abort?i=${i}`, { dispatcher, signal: controller.signal }).then((r) => r.body.text()));
      wait(() => controller.abort(reason));
      await expect(settled).rejects.toBe(reason);
    }
    const sentAfter = rs.inResource().filter((h) => h.path === '/mcp/abort');
    // Whatever reached the server before the abort carried a valid proof, each one once.
    expect(new Set(sentAfter.map((h) => claimsOf(h.dpop!).jti)).size).toBe(sentAfter.length);
    expect((await get(dispatcher, '/mcp/after', 'alice')).status).toBe(200);
  });

  it('a raw handler that aborts from onConnect, before the proof is signed: exactly one onError, nothing sent', async () => {
    const dispatcher = agent(ours());
    await get(dispatcher, '/mcp/warm', 'alice');
    const errors: Error[] = [];
    const later: string[] = [];
    await users.run('alice', async () => {
      dispatcher.dispatch({ origin: rs.origin, path: '/mcp/raw', method: 'GET' }, {
        onConnect: (abort: (reason?: Error) => void) => abort(new Error('stop')),
        onHeaders: () => later.push('headers') > 0,
        onData: () => later.push('data') > 0,
        onComplete: () => void later.push('complete'),
        onError: (error: Error) => void errors.push(error),
      } as never);
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    expect(errors.map((e) => e.message)).toEqual(['stop']);
    expect(later).toEqual([]);
    expect(rs.inResource().filter((h) => h.path === '/mcp/raw')).toEqual([]);
  });
});
