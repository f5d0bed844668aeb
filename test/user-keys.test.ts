/**
 * What the engine does with user keys: one refused for naming two people gets no token from any
 * adapter (getAccessToken included), and keys are bounded in length, refused before anything is sent.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, CrossAppAccess, CrossAppAccessError } from '../src/index.js';
import { MAX_USER_KEY_LENGTH } from '../src/engine/users.js';
import { listToolsInit } from './helpers/stack-options.js';
import { startMcpServer, type McpTestServer } from './servers/mcp-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let second: McpTestServer;
beforeEach(async () => {
  stack = await startStack();
  second = await startMcpServer({ authorizationServer: stack.as });
  stack.as.allowedResources = [stack.mcp.resource, second.resource];
});
afterEach(async () => {
  await Promise.all([stack.close(), second.close()]);
});

const engine = () =>
  new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
  });

describe('a user key refused with user_mismatch', () => {
  it('gets no token from getAccessToken, stored or new, until it is forgotten', async () => {
    const xaa = engine();
    let sub = 'alice';
    const idToken = () => stack.idp.mintIdToken({ sub });
    const first = await xaa.getAccessToken({ user: 'kiosk-1', idToken, url: stack.mcp.url });
    expect(stack.as.verifyAccessToken(first.token)?.sub).toBe('alice');

    // The application's session mix-up: the key's next ID token names someone else.
    sub = 'bob';
    const kiosk = xaa.fetch(fetch, { user: 'kiosk-1', idToken });
    await expect(kiosk(second.url, listToolsInit())).rejects.toMatchObject({ code: 'user_mismatch' });
    const grants = stack.as.counters.grant;

    // Alice's stored token is not handed to whoever holds the key now; nothing new is acquired.
    await expect(xaa.getAccessToken({ user: 'kiosk-1', idToken, url: stack.mcp.url })).rejects.toMatchObject({ code: 'user_mismatch' });
    await expect(xaa.getAccessToken({ user: 'kiosk-1', idToken, url: second.url })).rejects.toMatchObject({ code: 'user_mismatch' });
    await expect(kiosk(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'user_mismatch' });
    expect(stack.as.counters.grant).toBe(grants);

    await xaa.forget('kiosk-1');
    const fresh = await xaa.getAccessToken({ user: 'kiosk-1', idToken, url: stack.mcp.url });
    expect(stack.as.verifyAccessToken(fresh.token)?.sub).toBe('bob');
  });
});

describe('user keys are bounded', () => {
  const long = 'u'.repeat(MAX_USER_KEY_LENGTH + 1);
  const idToken = () => stack.idp.mintIdToken();

  it(`a key of ${MAX_USER_KEY_LENGTH + 1} characters is a ConfigurationError at the call; nothing is sent`, async () => {
    const xaa = engine();
    const perRequest = xaa.fetch(fetch, { user: () => long, idToken });
    const error = await perRequest(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as CrossAppAccessError).message).toMatch(/at most 1024 characters, got 1025/);
    expect((error as CrossAppAccessError).message).not.toContain(long);
    await expect(xaa.getAccessToken({ user: long, idToken, url: stack.mcp.url })).rejects.toBeInstanceOf(ConfigurationError);
    await expect(xaa.forget(long)).rejects.toBeInstanceOf(ConfigurationError);
    expect(() => xaa.fetch(fetch, { user: long, idToken })).toThrow(ConfigurationError);
    expect(stack.mcp.requests).toHaveLength(0);
    expect(stack.idp.counters.exchange).toBe(0);
  });

  it(`a key of ${MAX_USER_KEY_LENGTH} characters works`, async () => {
    const xaa = engine();
    const response = await xaa.fetch(fetch, { user: () => long.slice(1), idToken })(stack.mcp.url, listToolsInit());
    expect(response.status).toBe(200);
  });
});
