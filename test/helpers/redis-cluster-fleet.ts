/**
 * A fleet on any client `redisTokenStore` accepts: a real 3-master Redis Cluster for the cluster
 * clients (node-redis's `createCluster`, ioredis's `Cluster`), a real `redis-server` for the single
 * ones, started once per `describe` and stopped after it; the loopback IdP, authorization server and
 * MCP server started afresh for each test. Members are those of redis-fleet.ts.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { startStack, type Stack } from '../servers/stack.js';
import { startRedisServer, type RedisServer } from '../servers/redis-server.js';
import { makeClient, type ClientKind, type MadeClient } from './redis-clients.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';
import { fleetMember, type FleetMemberOptions, type Member } from './redis-fleet.js';

export interface ClusterFleet {
  readonly kind: ClientKind;
  readonly stack: Stack;
  /** Every node's URL (one for a single server). */
  readonly urls: string[];
  /** The cluster, for the cluster kinds. */
  readonly cluster: RedisCluster | undefined;
  /** A connected client of the fleet's kind, ended after the test. */
  client(): Promise<MadeClient>;
  /** A member on a client of its own. */
  member(options?: FleetMemberOptions): Promise<Member>;
  /** How many keys each node holds (DBSIZE), in node order; -1 for a node that does not answer. */
  keysPerNode(): Promise<number[]>;
}

/** `serverArgs` go to every cluster node (see {@link startRedisCluster}). */
export function useClusterFleet(kind: ClientKind, serverArgs: string[] = []): ClusterFleet {
  const isCluster = kind.endsWith('-cluster');
  let cluster: RedisCluster | undefined;
  let single: RedisServer | undefined;
  let stack: Stack;
  let urls: string[] = [];
  const cleanups: Array<() => Promise<unknown> | unknown> = [];

  beforeAll(async () => {
    if (isCluster) {
      cluster = await startRedisCluster(3, serverArgs);
      urls = cluster.nodes.map((node) => node.url);
    } else {
      single = await startRedisServer();
      urls = [single.url];
    }
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    await single?.stop();
  });
  beforeEach(async () => {
    stack = await startStack();
    await onEachNode(['FLUSHALL']);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
    await stack.close();
  });

  /** Runs `args` on every node that answers (one at a time, each on a single client of its own). */
  async function onEachNode(args: string[]): Promise<unknown[]> {
    const replies: unknown[] = [];
    for (const url of urls) {
      const node = await Promise.race([makeClient('node-redis', [url]), new Promise<undefined>((resolve) => setTimeout(resolve, 1_000))]).catch(() => undefined);
      try {
        replies.push(node ? await node.command(args).catch(() => undefined) : undefined);
      } finally {
        node?.destroy();
      }
    }
    return replies;
  }

  async function client(): Promise<MadeClient> {
    const made = await makeClient(kind, urls);
    cleanups.push(() => made.destroy());
    return made;
  }

  return {
    kind,
    get stack() {
      return stack;
    },
    get urls() {
      return urls;
    },
    get cluster() {
      return cluster;
    },
    client,
    member: async (options = {}) => fleetMember(stack, (await client()).client, options, (cleanup) => cleanups.push(cleanup)),
    keysPerNode: async () => (await onEachNode(['DBSIZE'])).map((n) => (typeof n === 'number' ? n : -1)),
  };
}
