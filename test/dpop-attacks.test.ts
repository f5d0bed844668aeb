/**
 * Attacks on DPoP (RFC 9449) against the real loopback servers: every way a DPoP-bound token could go
 * out as Bearer, or a proof or `Authorization` could leave the resource, or a nonce could be misused.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, interceptors, request } from 'undici';
import { ConfigurationError, CrossAppAccess, withCrossAppAccess } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { dpopEngineOptions, startDpopStack } from './helpers/dpop-resource.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

const setup = () => startDpopStack(cleanups);

const engineOptions = dpopEngineOptions;

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('the undici interceptor with a DPoP engine', () => {
  it('sends the DPoP-bound token as Authorization: DPoP with a fresh proof, cold and warm; never as Bearer', async () => {
    const { stack, rs } = await setup();
    const xaa = new CrossAppAccess(engineOptions(stack, rs));
    const agent = new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken() }));
    cleanups.push(() => agent.close());
    for (const body of ['cold', 'warm']) {
      const answer = await request(rs.resource, { dispatcher: agent, method: 'POST', body });
      await answer.body.dump();
      expect(answer.statusCode).toBe(200);
    }
    const hits = rs.inResource();
    expect(hits.map((h) => h.authorization?.split(' ')[0])).toEqual(['DPoP', 'DPoP']);
    expect(hits.map((h) => claimsOf(h.dpop!).htm)).toEqual(['POST', 'POST']);
    expect(new Set(hits.map((h) => claimsOf(h.dpop!).jti)).size).toBe(2);
    expect(stack.as.counters.grant).toBe(1);

    // The resource asks for a nonce: one more attempt with a proof carrying it, the body replayed.
    rs.dpop.requireNonce = true;
    rs.hits.length = 0;
    const answer = await request(rs.resource, { dispatcher: agent, method: 'POST', body: 'twelve bytes', headers: { dpop: 'caller-set' } });
    expect(await answer.body.json()).toMatchObject({ bytes: 12 });
    expect(rs.inResource().map((h) => [h.status, h.bytes.length, h.authorization?.split(' ')[0], h.dpop === 'caller-set'])).toEqual([
      [401, 12, 'DPoP', false],
      [200, 12, 'DPoP', false],
    ]);
    expect(claimsOf(rs.inResource()[1]!.dpop!).nonce).toBe(rs.dpop.nonce);
    expect(stack.as.counters.grant).toBe(1);
  });

  it('redirects followed by undici\'s redirect interceptor above it: each hop inside its own proof, none outside', async () => {
    const { stack, rs } = await setup();
    rs.redirects.set('/mcp/a', { status: 307, location: '/mcp/b' });
    rs.redirects.set('/mcp/leave', { status: 307, location: '/public/landing' });
    const xaa = new CrossAppAccess(engineOptions(stack, rs));
    const agent = new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken() }), interceptors.redirect({ maxRedirections: 3 }));
    cleanups.push(() => agent.close());
    for (const path of ['/mcp/a', '/mcp/leave']) {
      const answer = await request(`${rs.origin}${path}`, { dispatcher: agent, method: 'POST', body: 'x', headers: { dpop: 'caller-set' } });
      await answer.body.dump();
      expect(answer.statusCode).toBe(200);
    }
    const seen = rs.hits.filter((h) => h.path !== '/.well-known/oauth-protected-resource/mcp').map((h) => [h.path, h.authorization?.split(' ')[0], h.dpop && h.dpop !== 'caller-set' ? claimsOf(h.dpop).htu : h.dpop]);
    expect(seen).toEqual([
      ['/mcp/a', 'DPoP', `${rs.origin}/mcp/a`],
      ['/mcp/b', 'DPoP', `${rs.origin}/mcp/b`],
      ['/mcp/leave', 'DPoP', `${rs.origin}/mcp/leave`],
      // The caller's own header goes where the caller sent it; never our token or proof.
      ['/public/landing', undefined, 'caller-set'],
    ]);
  });

  it('a Bearer answer despite the proof still goes as Bearer (the warm path), with no proof', async () => {
    const { stack, rs } = await setup();
    stack.as.ignoreDpop = true;
    const xaa = new CrossAppAccess(engineOptions(stack, rs));
    const agent = new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => stack.idp.mintIdToken() }));
    cleanups.push(() => agent.close());
    for (let i = 0; i < 2; i++) {
      const answer = await request(rs.resource, { dispatcher: agent });
      await answer.body.dump();
      expect(answer.statusCode).toBe(200);
    }
    expect(rs.inResource().map((h) => [h.authorization?.split(' ')[0], h.dpop])).toEqual([
      ['Bearer', undefined],
      ['Bearer', undefined],
    ]);
  });
});

describe('DPoP nonces at the resource', () => {
  it('a resource that asks for a new nonce every time gets exactly one retry: its 401 comes back, no new acquisition', async () => {
    const { stack, rs } = await setup();
    rs.dpop.requireNonce = true;
    // Every proof is judged against a nonce newer than the one it carries.
    const verify = rs.dpop.verify.bind(rs.dpop);
    rs.dpop.verify = (proof, request) => {
      rs.dpop.rotateNonce();
      return verify(proof, request);
    };
    const { idp, client, resource, dpop } = engineOptions(stack, rs);
    const authedFetch = withCrossAppAccess(fetch, { idToken: () => stack.idp.mintIdToken(), idp, client, resource, dpop, retry: false });
    const response = await authedFetch(rs.resource, { method: 'POST', body: 'x' });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('use_dpop_nonce');
    expect(rs.inResource().map((h) => h.status)).toEqual([401, 401]);
    expect(stack.as.counters.grant).toBe(1);
  });
});

describe('DPoP keys that cannot make proofs a server verifies', () => {
  it('an RSA JWK whose n is another key\'s fails at first use with a ConfigurationError, before any token request', async () => {
    const { stack, rs } = await setup();
    const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const privateKey = { ...rsa(), n: rsa().n };
    const { idp, client, resource } = engineOptions(stack, rs);
    const authedFetch = withCrossAppAccess(fetch, { idToken: () => stack.idp.mintIdToken(), idp, client, resource, dpop: { privateKey } as never, retry: false });
    const failure = await authedFetch(rs.resource).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toMatch(/public members are not those of its private key/);
    expect([...stack.idp.requests, ...stack.as.requests].filter((r) => r.method === 'POST')).toEqual([]);
  });
});

describe('DPoP keys too weak to sign with', () => {
  const rsa1024 = () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;

  it('an RSA JWK under 2048 bits is a ConfigurationError when the options are made (RFC 7518 §3.3)', () => {
    const privateKey = rsa1024().export({ format: 'jwk' });
    const make = () => new CrossAppAccess({ idp: { tokenEndpoint: 'https://idp.example/token', clientId: 'c' }, client: { clientId: 'c' }, dpop: { privateKey } as never });
    expect(make).toThrow(ConfigurationError);
    expect(make).toThrow(/2048/);
  });

  it('an RSA PEM under 2048 bits fails at first use with a ConfigurationError, before any token request (the ID token never leaves)', async () => {
    const { stack, rs } = await setup();
    const privateKey = rsa1024().export({ format: 'pem', type: 'pkcs8' }) as string;
    const { idp, client, resource } = engineOptions(stack, rs);
    const authedFetch = withCrossAppAccess(fetch, { idToken: () => stack.idp.mintIdToken(), idp, client, resource, dpop: { privateKey }, retry: false });
    const failure = await authedFetch(rs.resource).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toMatch(/2048/);
    expect(stack.as.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(stack.idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });
});

describe('DPoP nonces at the resource, unusable', () => {
  it('a nonce past the length bound is not taken: no retry, no new acquisition, the 401 goes back', async () => {
    const { stack, rs } = await setup();
    rs.dpop.requireNonce = true;
    (rs.dpop as { nonce: string }).nonce = 'n'.repeat(4096);
    const { idp, client, resource, dpop } = engineOptions(stack, rs);
    const authedFetch = withCrossAppAccess(fetch, { idToken: () => stack.idp.mintIdToken(), idp, client, resource, dpop, retry: false });
    expect((await authedFetch(rs.resource)).status).toBe(401);
    expect(rs.inResource().map((h) => [h.status, h.dpop && claimsOf(h.dpop).nonce])).toEqual([[401, undefined]]);
    expect(stack.as.counters.grant).toBe(1);
  });
});

describe('getAccessToken\'s dpopProof', () => {
  it('makes proofs for URLs inside the token\'s resource only: another origin, or the same origin outside the path, gets none', async () => {
    const { stack, rs } = await setup();
    const xaa = new CrossAppAccess(engineOptions(stack, rs));
    const result = await xaa.getAccessToken({ user: 'alice', idToken: () => stack.idp.mintIdToken(), url: rs.resource });
    expect(claimsOf(await result.dpopProof!('POST', `${rs.resource}/sub?q=1`)).htu).toBe(`${rs.resource}/sub`);
    for (const elsewhere of ['https://attacker.example/mcp', `${rs.origin}/public`, `${rs.origin}/mcpx`, 'not a url']) {
      await expect(result.dpopProof!('GET', elsewhere)).rejects.toMatchObject({ code: 'invalid_option', stage: 'request' });
    }
  });
});

describe('DPoP redirects that leave the resource path on its own origin', () => {
  it('a 307 from inside the resource to the same origin outside its path: no Authorization, no proof, the caller\'s DPoP header dropped', async () => {
    const { stack, rs } = await setup();
    rs.redirects.set('/mcp/leave', { status: 307, location: '/public/landing' });
    const { idp, client, resource, dpop } = engineOptions(stack, rs);
    const authedFetch = withCrossAppAccess(fetch, { idToken: () => stack.idp.mintIdToken(), idp, client, resource, dpop, retry: false });
    expect((await authedFetch(`${rs.resource}/leave`, { method: 'POST', body: 'x', headers: { dpop: 'caller-set' } })).status).toBe(200);
    const landing = rs.hits.find((h) => h.path === '/public/landing')!;
    expect([landing.authorization, landing.dpop, landing.bytes.toString()]).toEqual([undefined, undefined, 'x']);
    const leave = rs.hits.find((h) => h.path === '/mcp/leave')!;
    expect(claimsOf(leave.dpop!).htu).toBe(`${rs.resource}/leave`);
  });
});
