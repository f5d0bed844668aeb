/**
 * DPoP (RFC 9449) end to end against real loopback servers: the test authorization server binds
 * tokens to the proof's key, and a resource verifies every proof with `jose` (signature, `typ`,
 * `htm`, `htu`, `iat`, `ath`, a fresh `jti`, the key's thumbprint, nonces).
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { ConfigurationError, CrossAppAccess, CrossAppAccessError, memoryTokenStore, withCrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessOptions } from '../src/index.js';
import { startDpopStack, type DpopResource } from './helpers/dpop-resource.js';
import { startRecorder } from './helpers/redirect-servers.js';
import { whoamiThrough } from './helpers/mcp-clients.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

const setup = () => startDpopStack(cleanups);

function options(stack: Stack, rs: DpopResource, events: CrossAppAccessEvent[], more: Partial<CrossAppAccessOptions> = {}): CrossAppAccessOptions {
  return {
    idToken: () => stack.idp.mintIdToken(),
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer },
    resource: rs.resource,
    retry: false,
    dpop: true,
    onEvent: (event) => events.push(event),
    ...more,
  };
}

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

describe('DPoP proofs (RFC 9449 §4.2, §5, §7)', () => {
  it('the jwt-bearer request carries a proof; the DPoP token goes as Authorization: DPoP with a fresh proof per request', async () => {
    const { stack, rs } = await setup();
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, events));

    const first = await authedFetch(`${rs.resource}?page=1#top`, { method: 'POST', body: 'hello' });
    expect(first.status).toBe(200);
    const second = await authedFetch(rs.resource);
    expect(second.status).toBe(200);

    // At the token endpoint: one proof, bound key's public JWK in the header, htm/htu of that request.
    const [tokenProof] = stack.as.dpop.proofs;
    expect(stack.as.dpop.proofs).toHaveLength(1);
    expect(tokenProof!.header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256' } });
    expect(tokenProof!.header.jwk).not.toHaveProperty('d');
    expect(tokenProof!.claims).toMatchObject({ htm: 'POST', htu: stack.as.tokenEndpoint });
    expect(tokenProof!.claims.ath).toBeUndefined();
    expect(typeof tokenProof!.claims.iat).toBe('number');

    // At the resource: DPoP scheme, each request its own proof (verified by jose), htu without query or fragment.
    const hits = rs.inResource();
    expect(hits).toHaveLength(2);
    for (const hit of hits) expect(hit.authorization).toMatch(/^DPoP [\w-]+$/);
    expect(rs.dpop.proofs.map((p) => [p.claims.htm, p.claims.htu])).toEqual([
      ['POST', rs.resource],
      ['GET', rs.resource],
    ]);
    const jtis = [tokenProof!.claims.jti, ...rs.dpop.proofs.map((p) => p.claims.jti)];
    expect(new Set(jtis).size).toBe(3);
    expect(rs.dpop.proofs.every((p) => p.jkt === tokenProof!.jkt && typeof p.claims.ath === 'string')).toBe(true);
    expect(stack.as.counters.grant).toBe(1);
    expect(events.filter((e) => e.type === 'diagnostic')).toEqual([]);
  });

  it('a Bearer answer despite the proof is sent as Bearer, with a diagnostic; never a DPoP header', async () => {
    const { stack, rs } = await setup();
    stack.as.ignoreDpop = true;
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, events));
    expect((await authedFetch(rs.resource)).status).toBe(200);
    expect((await authedFetch(rs.resource)).status).toBe(200);
    const sent = rs.inResource();
    expect(sent.map((h) => [h.authorization?.split(' ')[0], h.dpop])).toEqual([
      ['Bearer', undefined],
      ['Bearer', undefined],
    ]);
    expect(events.filter((e) => e.type === 'diagnostic').map((e) => (e as { message: string }).message)).toEqual([
      expect.stringContaining('issued a Bearer token despite the DPoP proof'),
    ]);
  });

  it('a real MCP SDK client calls a tool on the MCP SDK server with a DPoP-bound token', async () => {
    const stack = await startStack();
    cleanups.push(() => stack.close());
    const authedFetch = withCrossAppAccess(fetch, {
      idToken: () => stack.idp.mintIdToken({ sub: 'alice' }),
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
      dpop: true,
    });
    expect(await whoamiThrough(stack.mcp.url, authedFetch, false)).toContain('alice');
    const tokened = stack.mcp.requests.filter((r) => r.authorization !== undefined);
    expect(tokened.every((r) => r.authorization!.startsWith('DPoP '))).toBe(true);
    // The POSTs were all answered; a GET (the SSE stream) may still be in verification when the client closes.
    const posts = tokened.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThan(1);
    const proofs = stack.mcp.dpop.proofs;
    expect(proofs.length).toBeGreaterThanOrEqual(posts.length);
    expect(new Set(proofs.map((p) => p.claims.jti)).size).toBe(proofs.length);
  });
});

describe('DPoP nonces (RFC 9449 §8, §9)', () => {
  it('the authorization server asks for a nonce: exactly one retry of the grant, with the nonce, the same ID-JAG', async () => {
    const { stack, rs } = await setup();
    stack.as.dpop.requireNonce = true;
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, []));
    expect((await authedFetch(rs.resource)).status).toBe(200);
    expect(stack.as.counters.grant).toBe(2);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.dpop.proofs.map((p) => p.claims.nonce)).toEqual([stack.as.dpop.nonce]);
  });

  it('an authorization server that keeps asking gets one retry only: the use_dpop_nonce error comes back', async () => {
    const { stack, rs } = await setup();
    stack.as.dpop.requireNonce = true;
    let grants = 0;
    stack.as.override = ({ path }) => {
      if (!path.endsWith('/token')) return undefined;
      grants++;
      stack.as.dpop.rotateNonce(); // every answer carries a nonce the next proof cannot know
      return undefined;
    };
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, []));
    const failure = await authedFetch(rs.resource).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CrossAppAccessError);
    expect((failure as CrossAppAccessError).error).toBe('use_dpop_nonce');
    expect(grants).toBe(2);
  });

  it('the resource asks for a nonce: exactly one retry with a new proof carrying it, the body replayed, no new acquisition; later proofs carry it at once', async () => {
    const { stack, rs } = await setup();
    rs.dpop.requireNonce = true;
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, []));
    const response = await authedFetch(rs.resource, { method: 'POST', body: 'twelve bytes' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ bytes: 12 });
    expect(rs.inResource().map((h) => [h.status, h.bytes.length])).toEqual([
      [401, 12],
      [200, 12],
    ]);
    expect(stack.as.counters.grant).toBe(1);
    const [firstProof, retryProof] = rs.inResource().map((h) => claimsOf(h.dpop!));
    expect(firstProof!.nonce).toBeUndefined();
    expect(retryProof!.nonce).toBe(rs.dpop.nonce);
    expect(retryProof!.jti).not.toBe(firstProof!.jti);

    // Remembered for the origin: the next request needs no retry.
    rs.hits.length = 0;
    expect((await authedFetch(rs.resource)).status).toBe(200);
    expect(rs.inResource().map((h) => h.status)).toEqual([200]);

    // A new nonce: one more retry, still no new acquisition.
    rs.dpop.rotateNonce();
    rs.hits.length = 0;
    expect((await authedFetch(rs.resource)).status).toBe(200);
    expect(rs.inResource().map((h) => h.status)).toEqual([401, 200]);
    expect(stack.as.counters.grant).toBe(1);
  });
});

describe('DPoP proofs never leave the resource', () => {
  it('a redirect inside the resource gets its own proof (its own htu, a new jti)', async () => {
    const { stack, rs } = await setup();
    rs.redirects.set('/mcp/a', { status: 307, location: '/mcp/b' });
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, []));
    const response = await authedFetch(`${rs.resource}/a`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(200);
    const [a, b] = rs.inResource();
    expect(a!.path).toBe('/mcp/a');
    expect(b!.path).toBe('/mcp/b');
    const [pa, pb] = [claimsOf(a!.dpop!), claimsOf(b!.dpop!)];
    expect([pa.htu, pb.htu]).toEqual([`${rs.resource}/a`, `${rs.resource}/b`]);
    expect(pa.jti).not.toBe(pb.jti);
    expect(rs.dpop.proofs.map((p) => p.claims.htu)).toEqual([`${rs.resource}/b`]);

    // The same from the warm path (the token cached): each hop signed for its own URL again.
    expect((await authedFetch(`${rs.resource}/a`, { method: 'POST', body: 'y' })).status).toBe(200);
    const [, , wa, wb] = rs.inResource();
    expect([claimsOf(wa!.dpop!).htu, claimsOf(wb!.dpop!).htu]).toEqual([`${rs.resource}/a`, `${rs.resource}/b`]);
    expect(new Set(rs.inResource().map((h) => claimsOf(h.dpop!).jti)).size).toBe(4);
    expect(stack.as.counters.grant).toBe(1);
  });

  it('a redirect out of the resource, and a URL outside it, carry no proof and no Authorization', async () => {
    const { stack, rs } = await setup();
    const elsewhere = await startRecorder();
    cleanups.push(() => elsewhere.close());
    rs.redirects.set('/mcp/out', { status: 307, location: `${elsewhere.url}/landing` });
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, []));
    expect((await authedFetch(rs.resource)).status).toBe(200);
    expect((await authedFetch(`${rs.resource}/out`, { headers: { dpop: 'caller-set' } })).status).toBe(200);
    expect((await authedFetch(`${rs.origin}/public`)).status).toBe(200);
    expect(elsewhere.hits).toHaveLength(1);
    expect(elsewhere.hits[0]!.headers.authorization).toBeUndefined();
    expect(elsewhere.hits[0]!.headers.dpop).toBeUndefined();
    const outside = rs.hits.find((h) => h.path === '/public')!;
    expect([outside.authorization, outside.dpop]).toEqual([undefined, undefined]);
  });
});

describe('DPoP keys', () => {
  it.each([
    ['an oct JWK', { privateKey: { kty: 'oct', k: 'c2VjcmV0' } }, /HMAC/],
    ['a public-only JWK', { privateKey: (() => { const { d: _d, ...pub } = ecKey().export({ format: 'jwk' }); return pub; })() }, /private JWK/],
    ['garbage PEM', { privateKey: 'not a pem' }, /PKCS#8 PEM/],
    ['an unsupported curve (P-521)', { privateKey: generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey.export({ format: 'jwk' }) }, /curve "P-521"/],
    ['an unsupported alg', { privateKey: ecKey().export({ format: 'jwk' }), signingAlg: 'HS256' }, /signingAlg must be one of/],
    ['an alg that does not fit the key', { privateKey: ecKey().export({ format: 'jwk' }), signingAlg: 'RS256' }, /cannot sign with RS256/],
    ['a CryptoKey', { privateKey: null as unknown }, /CryptoKey/],
    ['a string', 'yes', /expected true, false/],
  ])('%s → ConfigurationError when the options are made', async (_name, dpop, message) => {
    let value = dpop as unknown;
    if ((dpop as { privateKey?: unknown }).privateKey === null) {
      const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
      value = { privateKey: pair.privateKey };
    }
    const make = () => withCrossAppAccess(fetch, { idToken: 'x', idp: { tokenEndpoint: 'https://idp.example/token', clientId: 'c' }, client: { clientId: 'c' }, dpop: value as never });
    expect(make).toThrow(ConfigurationError);
    expect(make).toThrow(message);
    expect(() => new CrossAppAccess({ idp: { tokenEndpoint: 'https://idp.example/token', clientId: 'c' }, client: { clientId: 'c' }, dpop: value as never })).toThrow(ConfigurationError);
  });

  it('a PEM whose content is not a key fails at first use with a ConfigurationError, before the grant is sent', async () => {
    const { stack, rs } = await setup();
    const events: CrossAppAccessEvent[] = [];
    const pem = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----';
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, events, { dpop: { privateKey: pem } }));
    const failure = await authedFetch(rs.resource).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toContain('dpop.privateKey');
    expect((failure as Error).message).not.toContain('AAAA');
    expect(stack.as.counters.grant).toBe(0);
  });

  it.each([
    ['a P-256 PKCS#8 PEM', () => ({ privateKey: ecKey().export({ format: 'pem', type: 'pkcs8' }) as string }), 'ES256'],
    ['a P-384 JWK', () => ({ privateKey: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' }) }), 'ES384'],
    ['an RSA PEM with PS256', () => ({ privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, signingAlg: 'PS256' as const }), 'PS256'],
    ['an Ed25519 JWK', () => ({ privateKey: generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) }), 'EdDSA'],
  ])('%s signs proofs the servers verify (%s)', async (_name, dpop, alg) => {
    const { stack, rs } = await setup();
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, [], { dpop: dpop() as never }));
    expect((await authedFetch(rs.resource)).status).toBe(200);
    expect(decodeProtectedHeader(rs.hits.at(-1)!.dpop!).alg).toBe(alg);
    expect(stack.as.dpop.proofs[0]!.jkt).toBe(rs.dpop.proofs[0]!.jkt);
  });

  it('two engines sharing a memory store, one with DPoP and one without: each uses its own token, a DPoP token never as Bearer', async () => {
    const { stack, rs } = await setup();
    const store = memoryTokenStore();
    const base = { idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId }, client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer }, resource: rs.resource, store };
    const bound = new CrossAppAccess({ ...base, dpop: true });
    const plain = new CrossAppAccess(base);
    const idToken = () => stack.idp.mintIdToken({ sub: 'alice' });
    expect((await bound.fetch(fetch, { user: 'alice', idToken })(rs.resource)).status).toBe(200);
    expect((await plain.fetch(fetch, { user: 'alice', idToken })(rs.resource)).status).toBe(200);
    const [dpopHit, bearerHit] = rs.inResource();
    expect(dpopHit!.authorization!.split(' ')[0]).toBe('DPoP');
    expect(bearerHit!.authorization!.split(' ')[0]).toBe('Bearer');
    expect(bearerHit!.authorization!.split(' ')[1]).not.toBe(dpopHit!.authorization!.split(' ')[1]);
    expect(bearerHit!.dpop).toBeUndefined();
    expect(stack.as.counters.grant).toBe(2);
  });
});

describe('DPoP outside the fetch wrapper', () => {
  it('getAccessToken says the token is DPoP and makes proofs the resource accepts; the SDK authProvider refuses to hand it out as Bearer', async () => {
    const { stack, rs } = await setup();
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer },
      resource: rs.resource,
      dpop: true,
    });
    const idToken = () => stack.idp.mintIdToken({ sub: 'alice' });
    const result = await xaa.getAccessToken({ user: 'alice', idToken, url: rs.resource });
    expect(result.tokenType).toBe('DPoP');
    const response = await fetch(rs.resource, { headers: { authorization: `DPoP ${result.token}`, dpop: await result.dpopProof!('GET', rs.resource) } });
    expect(response.status).toBe(200);

    const provider = xaa.authProvider({ user: 'alice', idToken, url: rs.resource });
    const refused = await provider.token().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CrossAppAccessError);
    expect((refused as CrossAppAccessError).code).toBe('dpop_unsupported');
    expect((refused as Error).message).not.toContain(result.token);
  });
});

describe('an ID-JAG bound to the DPoP key at the IdP (draft-ietf-oauth-identity-assertion-authz-grant-04 §8.6)', () => {
  it('bindIdJag: the exchange carries a proof, the IdP binds the ID-JAG (cnf.jkt), the grant proves the same key', async () => {
    const { stack, rs } = await setup();
    stack.idp.bindIdJags = true;
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, events, { dpop: { bindIdJag: true } }));
    expect((await authedFetch(rs.resource)).status).toBe(200);
    const [exchangeProof] = stack.idp.dpop.proofs;
    expect(exchangeProof!.claims).toMatchObject({ htm: 'POST', htu: stack.idp.tokenEndpoint });
    expect(stack.as.dpop.proofs[0]!.jkt).toBe(exchangeProof!.jkt);
    expect(events.filter((e) => e.type === 'diagnostic')).toEqual([]);
  });

  it('an IdP that does not bind it: a diagnostic, and the unbound ID-JAG is used; without bindIdJag no proof goes to the IdP', async () => {
    const { stack, rs } = await setup();
    const events: CrossAppAccessEvent[] = [];
    expect((await withCrossAppAccess(fetch, options(stack, rs, events, { dpop: { bindIdJag: true } }))(rs.resource)).status).toBe(200);
    expect(events.filter((e) => e.type === 'diagnostic').map((e) => (e as { message: string }).message)).toEqual([expect.stringContaining('did not bind the ID-JAG')]);
    expect(stack.idp.requests.filter((r) => r.headers.dpop !== undefined)).toHaveLength(1);

    stack.idp.bindIdJags = true;
    expect((await withCrossAppAccess(fetch, options(stack, rs, []))(rs.resource)).status).toBe(200);
    expect(stack.idp.requests.filter((r) => r.headers.dpop !== undefined)).toHaveLength(1);
  });

  it('an ID-JAG bound to another key is refused before it is sent (id_jag_mismatch)', async () => {
    const { stack, rs } = await setup();
    stack.idp.bindIdJags = true;
    stack.idp.transformIdJag = (draft) => {
      draft.claims.cnf = { jkt: 'someone-elses-key-thumbprint' };
    };
    const failure = await withCrossAppAccess(fetch, options(stack, rs, [], { dpop: { bindIdJag: true } }))(rs.resource).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CrossAppAccessError);
    expect((failure as CrossAppAccessError).code).toBe('id_jag_mismatch');
    expect(stack.as.counters.grant).toBe(0);
  });
});

describe('htm is the method as it goes out', () => {
  // (Node's HTTP server refuses a lower-case method fetch leaves as written, such as `patch`, with a 400: not testable here.)
  it('fetch upper-cases post and put: so do the proofs', async () => {
    const { stack, rs } = await setup();
    const authedFetch = withCrossAppAccess(fetch, options(stack, rs, []));
    expect((await authedFetch(rs.resource, { method: 'post', body: 'a' })).status).toBe(200);
    expect((await authedFetch(rs.resource, { method: 'put', body: 'b' })).status).toBe(200);
    expect(rs.inResource().map((h) => [h.method, claimsOf(h.dpop!).htm])).toEqual([
      ['POST', 'POST'],
      ['PUT', 'PUT'],
    ]);
  });
});
