/**
 * DPoP (RFC 9449) through the undici interceptor, as through the fetch wrapper: a fresh proof per
 * dispatch (htu without the query), and one nonce retry at the resource with the body replayed and
 * the nonce remembered. The resource verifies every proof with `jose`. Redirects, a Bearer answer and
 * attacks through the interceptor are in dpop-attacks.test.ts.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, type CrossAppAccessEngineOptions } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { dpopEngineOptions, startDpopStack, type DpopResource } from './helpers/dpop-resource.js';
import type { Stack } from './servers/stack.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

const setup = () => startDpopStack(cleanups);

function agentFor(stack: Stack, rs: DpopResource, overrides: Partial<CrossAppAccessEngineOptions> = {}): Dispatcher {
  const xaa = new CrossAppAccess(dpopEngineOptions(stack, rs, overrides));
  const interceptor = crossAppAccessInterceptor(xaa, { user: 'alice', idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }) });
  const agent = new Agent().compose(interceptor);
  cleanups.push(() => agent.close());
  return agent;
}

async function call(dispatcher: Dispatcher, url: string, init: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}) {
  const response = await request(url, { method: init.method ?? 'GET', body: init.body, headers: init.headers, dispatcher });
  return { status: response.statusCode, text: await response.body.text() };
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('DPoP through the undici interceptor', () => {
  it('Authorization: DPoP with a fresh proof per request (htm, htu without query, ath), warm requests included', async () => {
    const { stack, rs } = await setup();
    const agent = agentFor(stack, rs);
    for (let i = 0; i < 3; i++) expect((await call(agent, `${rs.resource}?n=${i}`, { method: 'POST', body: `{"n":${i}}` })).status).toBe(200);
    const hits = rs.inResource();
    expect(hits.map((h) => h.status)).toEqual([200, 200, 200]);
    expect(hits.every((h) => h.authorization!.startsWith('DPoP '))).toBe(true);
    expect(rs.dpop.proofs.map((p) => [p.claims.htm, p.claims.htu])).toEqual(Array(3).fill(['POST', rs.resource]));
    expect(new Set(rs.dpop.proofs.map((p) => p.claims.jti)).size).toBe(3);
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.as.dpop.proofs[0]!.jkt).toBe(rs.dpop.proofs[0]!.jkt);
  });

  it('the resource asks for a nonce: one retry with a new proof carrying it, the body replayed, no new token', async () => {
    const { stack, rs } = await setup();
    rs.dpop.requireNonce = true;
    const agent = agentFor(stack, rs);
    const first = await call(agent, rs.resource, { method: 'POST', body: 'twelve bytes' });
    expect(first.status).toBe(200);
    expect(JSON.parse(first.text)).toMatchObject({ bytes: 12 });
    expect(rs.inResource().map((h) => [h.status, h.bytes.length])).toEqual([
      [401, 12],
      [200, 12],
    ]);
    expect(claimsOf(rs.inResource()[1]!.dpop!).nonce).toBe(rs.dpop.nonce);
    // Remembered: the next one carries it at once.
    expect((await call(agent, rs.resource)).status).toBe(200);
    expect(rs.inResource().map((h) => h.status)).toEqual([401, 200, 200]);
    expect(stack.as.counters.grant).toBe(1);
  });
});
