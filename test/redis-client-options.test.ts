/**
 * `redisTokenStore` given clients configured the way applications configure them: ioredis with a
 * `keyPrefix` (on a real 3-master cluster and a real `redis-server`), node-redis speaking RESP3 (on a real `redis-server`).
 * Each: one acquisition for the fleet, no Redis trouble reported, a sign-out reaching the other engine.
 */
import { once } from 'node:events';
import { Cluster, Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RedisTokenStoreOptions } from '../src/redis.js';
import { eventually } from './helpers/eventually.js';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.js';
import { fleetMember, type Member } from './helpers/redis-fleet.js';
import { skipRedis, startRedisServer, type RedisServer } from './servers/redis-server.js';
import { startStack, type Stack } from './servers/stack.js';

const signedOut = (member: Member, user: string) => member.events.some((e) => e.type === 'signed_out' && (e as { user?: string }).user === user);

describe.skipIf(skipRedis)('clients configured as applications configure them', () => {
  let cluster: RedisCluster;
  let single: RedisServer;
  let stack: Stack;
  const cleanups: Array<() => unknown> = [];
  beforeAll(async () => {
    [cluster, single] = await Promise.all([startRedisCluster(3), startRedisServer()]);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    await single?.stop();
  });
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
    await stack.close();
  });

  /** Two engines on clients of their own made by `connect`; A and B both call, then A signs alice out. */
  async function signOutReachesTheOther(connect: () => Promise<{ client: RedisTokenStoreOptions['client']; end(): unknown }>): Promise<void> {
    const member = async () => {
      const { client, end } = await connect();
      cleanups.push(end);
      return fleetMember(stack, client, { commandTimeoutMs: 2_000 }, (cleanup) => cleanups.push(cleanup));
    };
    const [a, b] = [await member(), await member()];
    expect(await a.call('alice')).toBe(200);
    expect(await b.call('alice')).toBe(200);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(b.events.filter((e) => e.type === 'token_shared')).toHaveLength(1);
    await a.xaa.forget('alice');
    await eventually(() => signedOut(b, 'alice'), 'the sign-out to reach the other engine');
    expect([...a.diagnostics(), ...b.diagnostics()]).toEqual([]);
  }

  it('ioredis Cluster with a keyPrefix (which it puts before a sharded channel too)', async () => {
    await signOutReachesTheOther(async () => {
      const client = new Cluster(cluster.startupNodes, { keyPrefix: 'app:', clusterRetryStrategy: () => 50, redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 1_000 } });
      client.on('error', () => {});
      if (client.status !== 'ready') await once(client, 'ready');
      return { client, end: () => client.disconnect() };
    });
  }, 30_000);

  it('ioredis Redis with a keyPrefix (classic pub/sub: the channel is not a key to it)', async () => {
    await signOutReachesTheOther(async () => {
      const client = new Redis(single.url, { keyPrefix: 'app:', maxRetriesPerRequest: 1 });
      client.on('error', () => {});
      if (client.status !== 'ready') await once(client, 'ready');
      return { client, end: () => client.disconnect() };
    });
  }, 30_000);

  it('node-redis speaking RESP3 (a script\'s nil reply, its pub/sub)', async () => {
    await signOutReachesTheOther(async () => {
      const client = createClient({ url: single.url, RESP: 3 });
      client.on('error', () => {});
      await client.connect();
      return { client, end: () => client.destroy() };
    });
  }, 30_000);
});
