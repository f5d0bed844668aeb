/**
 * A token endpoint that answered 429 or 503 with `Retry-After` (RFC 6585 §4; RFC 9110 §10.2.3) is
 * left alone until then by every user of the engine: each request held back waits within its own
 * retry budget, or fails at once with `retryAfter`, instead of sending its own request.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, type CrossAppAccessEngineOptions } from '../src/index.js';
import { listToolsInit } from './helpers/stack-options.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

function engine(overrides: Partial<CrossAppAccessEngineOptions> = {}) {
  const xaa = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    resource: stack.mcp.resource,
    ...overrides,
  });
  return (user: string) => xaa.fetch(fetch, { user, idToken: () => stack.idp.mintIdToken({ sub: user }) });
}

/**
 * From its first token request on, for `seconds`, the IdP's token endpoint answers every token
 * request 429 with `Retry-After: seconds` (as a rate limit does); returns how many it was sent.
 */
function idpBusy(seconds: number): () => number {
  let posts = 0;
  let busyUntil: number | undefined;
  stack.idp.override = (req) => {
    if (req.method !== 'POST') return undefined;
    posts++;
    busyUntil ??= Date.now() + seconds * 1000;
    if (Date.now() >= busyUntil) return undefined;
    return { status: 429, headers: { 'retry-after': String(seconds), 'content-type': 'application/json' }, body: '{"error":"slow_down"}' };
  };
  return () => posts;
}

describe('Retry-After from the IdP token endpoint', () => {
  it('holds back the other users: without retries, they fail at once with retryAfter and send nothing', async () => {
    const posts = idpBusy(60);
    const as = engine({ retry: false });
    await expect(as('alice')(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ stage: 'token_exchange', status: 429, retryAfter: 60 });
    for (const user of ['bob', 'carol', 'dave']) {
      const error = await as(user)(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 429 });
      expect((error as { retryAfter: number }).retryAfter).toBeGreaterThan(55);
      expect((error as Error).message).toMatch(/held back/);
    }
    expect(posts()).toBe(1);
  });

  it('with retries, a user held back waits until then and is served; the IdP sees one request per user after the wait', async () => {
    const posts = idpBusy(1);
    const as = engine();
    const alice = as('alice')(stack.mcp.url, listToolsInit());
    // Bob's acquisition starts once Alice's first exchange was refused.
    while (posts() === 0) await new Promise((r) => setImmediate(r));
    const bob = as('bob')(stack.mcp.url, listToolsInit());
    expect((await alice).status).toBe(200);
    expect((await bob).status).toBe(200);
    // Alice's refused one, then Alice's and Bob's after the wait: Bob never met the 429.
    expect(posts()).toBe(3);
  });
});
