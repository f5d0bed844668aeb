/**
 * Two enterprises, two IdPs, one authorization server: the same user key in each is two people. The
 * IdP is part of every cache key, so engines sharing a store (in memory, or Redis with the default
 * prefix) never hand one enterprise's token to the other's user.
 */
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, memoryTokenStore, type TokenStore } from '../src/index.js';
import { redisTokenStore } from '../src/redis.js';
import { listToolsInit } from './helpers/stack-options.js';
import { startIdp, type Idp } from './servers/idp.js';
import { skipRedis, startRedisServer, type RedisServer } from './servers/redis-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let globex: Idp;
beforeEach(async () => {
  globex = await startIdp();
  stack = await startStack({ moreIdps: [globex] });
});
afterEach(async () => {
  await Promise.all([stack.close(), globex.close()]);
});

/** An engine for one enterprise's IdP, on `store`; its users' ID tokens name `sub` at that IdP. */
function enterprise(idp: Idp, store: TokenStore) {
  const xaa = new CrossAppAccess({
    idp: { issuer: idp.issuer, clientId: idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    resource: stack.mcp.resource,
    store,
  });
  return (user: string, sub: string) => xaa.fetch(fetch, { user, idToken: () => idp.mintIdToken({ sub }) });
}

/** Who the MCP server says the bearer of `user`'s request is. */
async function whoami(send: typeof fetch): Promise<string> {
  const response = await send(stack.mcp.url, {
    ...listToolsInit(),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  return /sub=[^ "]*/.exec(text)![0] + ' ' + /idp=[^ "\\]*/.exec(text)![0];
}

async function twoEnterprisesOneKey(store: () => TokenStore): Promise<void> {
  const acme = enterprise(stack.idp, store());
  const globexUsers = enterprise(globex, store());
  expect(await whoami(acme('42', 'alice@acme'))).toBe(`sub=alice@acme idp=${stack.idp.issuer}`);
  expect(await whoami(globexUsers('42', 'bob@globex'))).toBe(`sub=bob@globex idp=${globex.issuer}`);
  // Each enterprise's user made their own exchange at their own IdP.
  expect(stack.idp.counters.exchange).toBe(1);
  expect(globex.counters.exchange).toBe(1);
  expect(stack.as.counters.grant).toBe(2);
}

describe('the same user key at two IdPs', () => {
  it('engines sharing one memory store keep two tokens', async () => {
    const shared = memoryTokenStore();
    await twoEnterprisesOneKey(() => shared);
  });

  describe.skipIf(skipRedis)('engines sharing Redis with the default prefix', () => {
    let redis: RedisServer;
    const clients: Array<{ close(): Promise<unknown> }> = [];
    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await redis.stop();
    });

    it('keep two tokens, each in its own Redis key', async () => {
      const store = () => {
        const client = createClient({ url: redis.url });
        clients.push(client);
        client.connect().catch(() => {});
        return redisTokenStore({ client, encryptionKeys: [Buffer.alloc(32, 7)] });
      };
      // Each engine has its own process-local level: only Redis is shared, as in a fleet.
      await twoEnterprisesOneKey(store);
    });
  });
});
