/**
 * Interop with an independent implementation of RFC 9449: `oidc-provider` 9 validates the
 * jwt-bearer request's DPoP proof (and its nonces) and issues DPoP-bound tokens, which this package
 * sends with a fresh proof per request to a resource that checks the binding.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withCrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessOptions } from '../../../src/index.js';
import { CLIENT, startInterop, type Interop } from './harness.js';

let interop: Interop;
beforeEach(async () => {
  interop = await startInterop();
});
afterEach(async () => {
  await interop.close();
});

function options(events: CrossAppAccessEvent[], more: Partial<CrossAppAccessOptions> = {}): CrossAppAccessOptions {
  return {
    idToken: () => interop.idp.mintIdToken({ sub: 'alice' }),
    idp: { issuer: interop.idp.issuer, clientId: interop.idp.clientId },
    client: CLIENT,
    resource: interop.resource,
    dpop: true,
    retry: false,
    onEvent: (event) => events.push(event),
    ...more,
  };
}

describe('oidc-provider 9: DPoP-bound tokens for ID-JAGs (RFC 9449 with draft-ietf-oauth-identity-assertion-authz-grant)', () => {
  it('the provider accepts the proof and issues a DPoP token; every resource request carries it with a fresh proof', async () => {
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = withCrossAppAccess(fetch, options(events));
    for (let i = 0; i < 3; i++) {
      const response = await authedFetch(interop.resource, { method: 'POST', body: `{"n":${i}}` });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ sub: 'alice' });
    }
    expect(interop.grants).toEqual([{ status: 200, tokenType: 'DPoP', proof: true, nonce: false }]);
    expect(interop.resourceRequests.map((r) => [r.scheme, r.proof, r.status])).toEqual([
      ['DPoP', true, 200],
      ['DPoP', true, 200],
      ['DPoP', true, 200],
    ]);
    expect(new Set(interop.resourceDpop.proofs.map((p) => p.claims.jti)).size).toBe(3);
    expect(events.filter((e) => e.type === 'failure' || e.type === 'diagnostic')).toEqual([]);
  });

  it('the provider demands its nonce (use_dpop_nonce + DPoP-Nonce): one retry with it, and the token is issued', async () => {
    interop.requireNonce = true;
    const authedFetch = withCrossAppAccess(fetch, options([]));
    expect((await authedFetch(interop.resource)).status).toBe(200);
    expect(interop.grants).toEqual([
      { status: 400, error: 'use_dpop_nonce', proof: true, nonce: false },
      { status: 200, tokenType: 'DPoP', proof: true, nonce: true },
    ]);
    expect(interop.idp.counters.exchange).toBe(1);
  });

  it('the resource demands its nonce: one retry with a new proof, no new token', async () => {
    interop.resourceDpop.requireNonce = true;
    const authedFetch = withCrossAppAccess(fetch, options([]));
    expect((await authedFetch(interop.resource, { method: 'POST', body: 'again' })).status).toBe(200);
    expect(interop.resourceRequests.map((r) => r.status)).toEqual([401, 200]);
    expect(interop.grants).toHaveLength(1);
    expect(interop.resourceDpop.proofs.at(-1)!.claims.nonce).toBe(interop.resourceDpop.nonce);
  });

  it('without dpop the provider issues Bearer tokens, which this resource refuses (one re-acquisition): no DPoP proof is ever made up', async () => {
    const authedFetch = withCrossAppAccess(fetch, options([], { dpop: false }));
    expect((await authedFetch(interop.resource)).status).toBe(401);
    expect(interop.grants.map((g) => [g.tokenType, g.proof])).toEqual([
      ['Bearer', false],
      ['Bearer', false],
    ]);
    expect(interop.resourceRequests.map((r) => [r.scheme, r.proof])).toEqual([
      ['Bearer', false],
      ['Bearer', false],
    ]);
  });
});
