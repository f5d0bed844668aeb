/**
 * The four Redis clients `redisTokenStore` accepts, made and connected the way an application
 * would: node-redis's `createClient` and `createCluster`, ioredis's `Redis` and `Cluster`. Used by
 * the fleet helpers and the fleet process fixture.
 */
import { once } from 'node:events';
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import type { IORedisLike, RedisClientLike, RedisClusterLike } from '../../src/redis.js';

export type ClientKind = 'node-redis' | 'node-redis-cluster' | 'ioredis' | 'ioredis-cluster';

/** A connected client and how to end it. */
export interface MadeClient {
  readonly client: RedisClientLike | RedisClusterLike | IORedisLike;
  /** Sends one raw command (routed by its first key on a cluster), for the test's own checks. */
  command(args: string[]): Promise<unknown>;
  destroy(): void;
}

/**
 * Connects a client of `kind` to `urls` (one `redis://host:port` for a single server; every node
 * of a cluster), retrying quickly when a server goes away (a test kills one).
 */
export async function makeClient(kind: ClientKind, urls: readonly string[]): Promise<MadeClient> {
  const reconnectStrategy = () => 50;
  switch (kind) {
    case 'node-redis': {
      const client = createClient({ url: urls[0], socket: { reconnectStrategy } });
      client.on('error', () => {});
      await client.connect();
      return { client, command: (args) => client.sendCommand(args), destroy: () => client.destroy() };
    }
    case 'node-redis-cluster': {
      const cluster = createCluster({ rootNodes: urls.map((url) => ({ url })), defaults: { socket: { reconnectStrategy, connectTimeout: 1_000 } } });
      cluster.on('error', () => {});
      await cluster.connect();
      return { client: cluster, command: (args) => cluster.sendCommand(args[1], false, args), destroy: () => cluster.destroy() };
    }
    case 'ioredis': {
      const { hostname, port } = new URL(urls[0]!);
      const redis = new Redis({ host: hostname, port: Number(port), retryStrategy: () => 50, maxRetriesPerRequest: 1 });
      redis.on('error', () => {});
      if (redis.status !== 'ready') await once(redis, 'ready');
      return { client: redis, command: ([name, ...args]) => redis.call(name!, ...args), destroy: () => redis.disconnect() };
    }
    case 'ioredis-cluster': {
      const nodes = urls.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) }));
      const cluster = new Cluster(nodes, { clusterRetryStrategy: () => 50, redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 1_000 } });
      cluster.on('error', () => {});
      if (cluster.status !== 'ready') await once(cluster, 'ready');
      return { client: cluster, command: ([name, ...args]) => cluster.call(name!, ...args), destroy: () => cluster.disconnect() };
    }
  }
}
