/**
 * An authorization server that takes jwt-bearer grants but lists grant profiles without the ID-JAG
 * one (draft-ietf-oauth-identity-assertion-authz-grant-04 §7.2): a workload's grant (SEP-1933) needs
 * no ID-JAG profile, an ID-JAG does. The metadata is shared through a real Redis store, so the
 * workload engine's copy must not make the user flow's engine send an ID-JAG there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrossAppAccess } from '../src/index.js';
import { redisTokenStore } from '../src/redis.js';
import { testPlatform } from './helpers/platform.js';
import { KEY1, newClient, type Client } from './helpers/redis-fleet.js';
import { listToolsInit, stackEngineOptions } from './helpers/stack-options.js';
import { skipRedis, startRedisServer, type RedisServer } from './servers/redis-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

const OTHER_PROFILE_ONLY = { authorization_grant_profiles_supported: ['urn:example:grant-profile:other'] };

let redis: RedisServer;
let stack: Stack;
const clients: Client[] = [];

beforeAll(async () => {
  if (!skipRedis) redis = await startRedisServer();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.destroy()));
  await stack?.close();
  await redis?.stop();
});

async function sharedStore() {
  const client = newClient(redis.url);
  clients.push(client);
  await client.connect();
  return redisTokenStore({ client, encryptionKeys: [KEY1] });
}

describe.skipIf(skipRedis)('grant profiles by mode', () => {
  it('a workload grant goes to an AS whose profiles lack ID-JAG; an ID-JAG engine sharing the store still refuses it, sending no ID-JAG', async () => {
    const platform = await testPlatform();
    stack = await startStack({
      as: { metadataOverrides: OTHER_PROFILE_ONLY, clients: [DEFAULT_AS_CLIENT], trustedPlatforms: [{ issuer: platform.issuer, publicKey: platform.publicKey }] },
    });
    const workload = new CrossAppAccess({
      assertion: ({ audience }) => platform.mint({ sub: 'spiffe://example.org/agent', aud: audience }),
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
      resource: stack.mcp.resource,
      store: await sharedStore(),
    });
    expect((await workload.fetch(fetch, { user: 'self' })(stack.mcp.url, listToolsInit())).status).toBe(200);
    const grants = () => stack.as.requests.filter((r) => r.path.endsWith('/token'));
    expect(grants()).toHaveLength(1);

    // The user flow, reading the same AS metadata from the store: refused, nothing sent to the AS's token endpoint.
    const user = new CrossAppAccess(stackEngineOptions(stack, { resource: stack.mcp.resource, store: await sharedStore() }));
    const asMetadataReads = stack.as.counters.metadata;
    const call = user.fetch(fetch, { user: 'alice', idToken: () => stack.idp.mintIdToken() })(stack.mcp.url, listToolsInit());
    await expect(call).rejects.toMatchObject({ code: 'unsupported_profile', stage: 'discovery' });
    expect(stack.as.counters.metadata).toBe(asMetadataReads);
    expect(grants()).toHaveLength(1);
  });
});
