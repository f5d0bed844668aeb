import { ConfigurationError } from '../errors.js';
import type { IORedisLike, IORedisSubscriberLike, RedisClientLike, RedisClusterLike, RedisSubscriberLike } from './redis-types.js';

/** The four kinds of client the store accepts, told apart by their shape (nothing is imported). */
export type RedisClientKind = 'node-redis' | 'node-redis-cluster' | 'ioredis' | 'ioredis-cluster';

/** How often an ioredis Cluster's sharded subscriber reads the slots (ioredis's documented default). */
const SUBSCRIBER_SLOTS_REFRESH_MS = 5_000;

/** A message listener: the channel's message. */
type Listener = (message: string) => void;

/** The store's subscriber connection, whatever the client: subscribe once, then end. */
export interface Subscription {
  /** Where the subscriber's errors go. */
  onError(listener: (error: unknown) => void): void;
  /** Connects (if needed) and subscribes to `channel`, sharded (`SSUBSCRIBE`) or not. */
  subscribe(channel: string, sharded: boolean, listener: Listener): Promise<void>;
  /** Ends the connection. */
  end(): void;
}

/**
 * One way to talk to Redis, whichever client the application gave: node-redis's client or cluster
 * (`createClient`, `createCluster`), ioredis's `Redis` or `Cluster`. Commands are raw argument
 * lists; on a cluster each is routed by its first key (a script's `KEYS[1]`, a channel), and every
 * script keeps all its keys in one slot, so no command crosses slots.
 */
export interface RedisConnection {
  readonly kind: RedisClientKind;
  /** True for a Redis Cluster client: pub/sub is sharded where the server has it. */
  readonly cluster: boolean;
  /** Whether commands can be sent now; while not, the store works without Redis. */
  ready(): boolean;
  /** Sends one command. */
  send(args: string[]): Promise<unknown>;
  /** A subscriber connection of its own, or undefined when the client cannot make one. */
  subscription(): Subscription | undefined;
}

/** Tells which client `client` is and wraps it; a ConfigurationError for anything else. */
export function redisConnection(client: unknown): RedisConnection {
  const c = client as Record<string, unknown> | null | undefined;
  if (c && typeof c === 'object' && typeof c.call === 'function' && typeof c.status === 'string') {
    return ioredis(client as IORedisLike);
  }
  if (c && typeof c === 'object' && typeof c.sendCommand === 'function') {
    // node-redis's cluster routes by key: sendCommand(firstKey, isReadonly, args); its client does not.
    if (typeof c.getSlotRandomNode === 'function' || ('masters' in c && typeof c.nodeClient === 'function')) return nodeRedisCluster(client as RedisClusterLike);
    return nodeRedis(client as RedisClientLike);
  }
  throw new ConfigurationError('client', 'expected a client of the redis package (createClient() or createCluster()) or of ioredis (new Redis() or new Cluster())');
}

/** The key a command is routed by on a cluster: a script's KEYS[1], else its first argument. */
export function routingKey(args: readonly string[]): string | undefined {
  const command = args[0]?.toUpperCase();
  if (command === 'EVAL' || command === 'EVALSHA') return Number(args[2]) > 0 ? args[3] : undefined;
  return args[1];
}

function nodeRedis(client: RedisClientLike): RedisConnection {
  return {
    kind: 'node-redis',
    cluster: false,
    ready: () => client.isReady,
    send: (args) => client.sendCommand(args),
    subscription: () => (typeof client.duplicate === 'function' ? nodeRedisSubscription(client.duplicate()) : undefined),
  };
}

function nodeRedisCluster(cluster: RedisClusterLike): RedisConnection {
  return {
    kind: 'node-redis-cluster',
    cluster: true,
    ready: () => cluster.isReady,
    // Not read-only: a script may write, and must run on the slot's master.
    send: (args) => cluster.sendCommand(routingKey(args), false, args),
    subscription: () => (typeof cluster.duplicate === 'function' ? nodeRedisSubscription(cluster.duplicate()) : undefined),
  };
}

function nodeRedisSubscription(subscriber: RedisSubscriberLike): Subscription {
  // It must not keep the process alive on its own (a cluster has no unref: its connections are the cluster's).
  subscriber.unref?.();
  return {
    onError: (listener) => void subscriber.on('error', listener),
    async subscribe(channel, sharded, listener) {
      await subscriber.connect();
      if (!sharded) return void (await subscriber.subscribe(channel, listener));
      if (typeof subscriber.sSubscribe !== 'function') throw new Error('the client has no sSubscribe (sharded pub/sub)');
      await subscriber.sSubscribe(channel, listener);
    },
    end: () => subscriber.destroy(),
  };
}

function ioredis(client: IORedisLike): RedisConnection {
  const cluster = client.isCluster === true;
  return {
    kind: cluster ? 'ioredis-cluster' : 'ioredis',
    cluster,
    ready: () => client.status === 'ready',
    // ioredis routes a command on a cluster by its keys itself (EVAL's by numkeys).
    send: ([command, ...args]) => client.call(command!, ...args),
    subscription() {
      if (typeof client.duplicate !== 'function') return undefined;
      // A Cluster subscribes to a sharded channel through one subscriber per master, only when told
      // to; it follows a slot that moved (resharding, failover) only once it reads the cluster's slots
      // again, which by default it never does on its own: every 5 s unless the application chose.
      const duplicate = client.duplicate.bind(client) as (...args: unknown[]) => IORedisSubscriberLike;
      const slotsRefreshInterval = client.options?.slotsRefreshInterval ?? SUBSCRIBER_SLOTS_REFRESH_MS;
      return ioredisSubscription(cluster ? duplicate([], { shardedSubscribers: true, slotsRefreshInterval }) : duplicate());
    },
  };
}

function ioredisSubscription(subscriber: IORedisSubscriberLike): Subscription {
  return {
    onError: (listener) => void subscriber.on('error', listener),
    async subscribe(channel, sharded, listener) {
      const event = sharded ? 'smessage' : 'message';
      // ioredis counts a sharded channel as a key and puts its keyPrefix before it (on SSUBSCRIBE
      // and SPUBLISH alike), so its messages come from the prefixed name; a classic channel is not a key.
      const from = sharded ? `${subscriber.options?.keyPrefix ?? ''}${channel}` : channel;
      subscriber.on(event, (name: string, message: string) => {
        if (name === from) listener(message);
      });
      // Connected already unless the application made its client with lazyConnect.
      if (subscriber.status === 'wait') await subscriber.connect();
      if (sharded) await subscriber.ssubscribe(channel);
      else await subscriber.subscribe(channel);
    },
    end: () => subscriber.disconnect(),
  };
}
