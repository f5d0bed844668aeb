/**
 * `xaa.authProvider(...)`: the MCP SDK v2 `AuthProvider` shape (`{ token, onUnauthorized }`) over
 * the engine, with a real v2 client and the real loopback servers: the user's token from the cache
 * (one acquisition), a refused token dropped so the transport's retry gets a new one, each user their
 * own, and no user failing closed before anything is sent.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess } from '../src/index.js';
import { toolText } from './helpers/mcp-clients.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

const engine = () =>
  new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    resource: stack.mcp.resource,
  });

async function connect(authProvider: ReturnType<CrossAppAccess['authProvider']>): Promise<Client> {
  const client = new Client({ name: 'auth-provider-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url), { authProvider }));
  return client;
}

describe('xaa.authProvider', () => {
  it('a v2 client connects and calls tools as its user, one acquisition for all its requests', async () => {
    const xaa = engine();
    const client = await connect(xaa.authProvider({ user: 'alice', idToken: () => stack.idp.mintIdToken({ sub: 'alice' }), url: stack.mcp.url }));
    for (let i = 0; i < 3; i++) expect(toolText(await client.callTool({ name: 'whoami', arguments: {} }))).toMatch(/^sub=alice /);
    await client.close();
    expect(stack.as.counters.grant).toBe(1);
  });

  it('a token the server refused (revoked) is dropped in onUnauthorized: the transport\'s retry carries a new one', async () => {
    const xaa = engine();
    const client = await connect(xaa.authProvider({ user: 'alice', idToken: () => stack.idp.mintIdToken({ sub: 'alice' }), url: stack.mcp.url }));
    expect(toolText(await client.callTool({ name: 'whoami', arguments: {} }))).toMatch(/^sub=alice /);
    stack.as.revokeAll();
    expect(toolText(await client.callTool({ name: 'whoami', arguments: {} }))).toMatch(/^sub=alice /);
    await client.close();
    expect(stack.as.counters.grant).toBe(2);
  });

  it('a per-request user from AsyncLocalStorage: each their own token; no user fails closed with nothing sent', async () => {
    const xaa = engine();
    const ctx = new AsyncLocalStorage<string>();
    const provider = xaa.authProvider({ user: () => ctx.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }), url: stack.mcp.url });
    const [alice, bob] = await Promise.all([ctx.run('alice', () => provider.token()), ctx.run('bob', () => provider.token())]);
    expect(stack.as.verifyAccessToken(alice)?.sub).toBe('alice');
    expect(stack.as.verifyAccessToken(bob)?.sub).toBe('bob');
    await expect(provider.token()).rejects.toMatchObject({ code: 'unknown_user' });
    expect(stack.idp.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });
});
