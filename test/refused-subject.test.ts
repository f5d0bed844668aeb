/**
 * A subject token the IdP refused (`invalid_grant`, RFC 6749 §5.2) is never sent again: the user's
 * requests fail at once with the same typed error until the application supplies another token,
 * which is tried at once. The IdP is not asked once per request for a sign-in it already ended.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, withCrossAppAccess, type IdTokenReason } from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

/** An ID token the IdP refuses (its `aud` is another client's). */
const refusedToken = () => stack.idp.mintIdToken({ aud: 'some-other-client' });

describe('a refused subject token', () => {
  it('30 requests of a user whose ID token the IdP refused make 1 exchange, each failing with login_required; a new token is tried at once', async () => {
    const dead = await refusedToken();
    let current = dead;
    const reasons: IdTokenReason[] = [];
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, {
      resource: stack.mcp.resource,
      idToken: ({ reason }) => {
        reasons.push(reason);
        return current;
      },
    }));
    for (let i = 0; i < 30; i++) {
      await expect(authedFetch(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'login_required', stage: 'token_exchange', error: 'invalid_grant' });
    }
    expect(stack.idp.counters.exchange).toBe(1);
    // The application was still asked (it may have a fresh token), once as 'rejected' per request.
    expect(reasons.filter((r) => r === 'rejected')).toHaveLength(30);

    current = await stack.idp.mintIdToken();
    expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.idp.requests.filter((r) => r.method === 'POST').map((r) => r.form.subject_token)).toEqual([dead, current]);
  });

  it('a string idToken the IdP refused is sent once, whatever the number of requests', async () => {
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource, idToken: await refusedToken() }));
    for (let i = 0; i < 5; i++) await expect(authedFetch(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'login_required' });
    expect(stack.idp.counters.exchange).toBe(1);
  });

  it("is one user's: another user of the engine is not held back, and forget() starts the user afresh", async () => {
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
      resource: stack.mcp.resource,
    });
    const dead = await refusedToken();
    const alice = xaa.fetch(fetch, { user: 'alice', idToken: () => dead });
    const bob = xaa.fetch(fetch, { user: 'bob', idToken: () => stack.idp.mintIdToken({ sub: 'bob' }) });
    await expect(alice(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'login_required' });
    expect((await bob(stack.mcp.url, listToolsInit())).status).toBe(200);
    await expect(alice(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'login_required' });
    expect(stack.idp.counters.exchange).toBe(2); // alice's once, bob's once
    await xaa.forget('alice');
    await expect(alice(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'login_required' });
    expect(stack.idp.counters.exchange).toBe(3);
  });
});
