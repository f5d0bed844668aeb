/**
 * `redisTokenStore` given clients configured the way applications configure them: ioredis with a
 * `keyPrefix` (on a real 3-master cluster and a single server).
 */
import { once } from 'node:events';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.js';
import { fleetMember, type Member } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';
import { startStack, type Stack } from './servers/stack.js';

async function eventually(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
const signedOut = (member: Member, user: string) => member.events.some((e) => e.type === 'signed_out' && (e as { user?: string }).user === user);

describe.skipIf(skipRedis)('ioredis Cluster with a keyPrefix', () => {
  let cluster: RedisCluster;
  let stack: Stack;
  const cleanups: Array<() => unknown> = [];
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => cluster?.stop());
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
    await stack.close();
  });

  async function member(): Promise<Member> {
    const client = new Cluster(cluster.startupNodes, { keyPrefix: 'app:', clusterRetryStrategy: () => 50, redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 1_000 } });
    client.on('error', () => {});
    if (client.status !== 'ready') await once(client, 'ready');
    cleanups.push(() => client.disconnect());
    return fleetMember(stack, client, { commandTimeoutMs: 2_000 }, (cleanup) => cleanups.push(cleanup));
  }

  it('one acquisition for the fleet, and forget() in one engine reaches the other (sharded pub/sub)', async () => {
    const [a, b] = [await member(), await member()];
    expect(await a.call('alice')).toBe(200);
    expect(await b.call('alice')).toBe(200);
    expect(stack.idp.counters.exchange).toBe(1);
    await a.xaa.forget('alice');
    await eventually(() => signedOut(b, 'alice'), 'the sign-out to reach the other engine');
    expect([...a.diagnostics(), ...b.diagnostics()]).toEqual([]);
  }, 30_000);
});
