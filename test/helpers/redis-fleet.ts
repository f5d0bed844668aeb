/**
 * Engines standing for the processes of a fleet, in one test process: each with its own node-redis
 * client, store and engine, sharing nothing but a real `redis-server`, against the real loopback
 * IdP, authorization server and MCP server. `useRedisFleet()` registers the hooks that start and
 * stop them around each test.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { CrossAppAccess, type CrossAppAccessEngineOptions, type CrossAppAccessEvent } from '../../src/index.js';
import { redisTokenStore, type RedisClientLike, type RedisTokenStore, type RedisTokenStoreOptions } from '../../src/redis.js';
import { listToolsInit } from './stack-options.js';
import { skipRedis, startRedisServer, type RedisServer } from '../servers/redis-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from '../servers/stack.js';

export const newClient = (url: string, connectTimeout?: number) => createClient({ url, socket: { reconnectStrategy: () => 50, ...(connectTimeout ? { connectTimeout } : {}) } });
export type Client = ReturnType<typeof newClient>;

/** The fleet lock's name in Redis, once one is taken (polled: each look is one SCAN). */
export async function lockTaken(raw: Client): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const [name] = (await raw.scan('0', { MATCH: '*:l:*', COUNT: 1000 })).keys;
    if (name) return name;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('no lock was taken');
}

/** The encryption key every member uses unless told otherwise. */
export const KEY1 = new Uint8Array(randomBytes(32));

/** One "process" of the fleet. */
export interface Member {
  xaa: CrossAppAccess;
  store: RedisTokenStore;
  events: CrossAppAccessEvent[];
  /** A `tools/list` through the MCP server for `user` (default alice); its status. */
  call(user?: string): Promise<number>;
  /** `getAccessToken` for `user` (default alice). */
  token(user?: string): Promise<string>;
  diagnostics(): string[];
  acquisitions(): number;
}

export interface MemberOptions extends FleetMemberOptions {
  client?: Client;
  /** Told of every message the store's subscriber receives, after the store handled it. */
  onMessage?: (message: string) => void;
}

export interface RedisFleet {
  readonly redis: RedisServer;
  readonly stack: Stack;
  /** A client of the test's own, on a flushed Redis. */
  readonly raw: Client;
  /** A connected client, destroyed after the test. */
  connected(url?: string): Promise<Client>;
  member(options?: MemberOptions): Promise<Member>;
  /** Runs `cleanup` after the test, before the servers stop (last registered, first run). */
  onCleanup(cleanup: () => Promise<unknown> | unknown): void;
}

export function useRedisFleet(): RedisFleet {
  let redis: RedisServer;
  let stack: Stack;
  let raw: Client;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];

  beforeAll(async () => {
    if (!skipRedis) redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(async () => {
    stack = await startStack();
    if (skipRedis) return;
    raw = await connected(redis.url);
    await raw.flushAll();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
    await stack.close();
  });

  async function connected(url = redis.url): Promise<Client> {
    const client = newClient(url);
    client.on('error', () => {});
    await client.connect();
    cleanups.push(() => client.destroy());
    return client;
  }

  async function member(options: MemberOptions = {}): Promise<Member> {
    const { client: given, onMessage, ...rest } = options;
    const client = given ?? (await connected());
    return fleetMember(stack, onMessage ? tapped(client, onMessage) : client, rest, (cleanup) => cleanups.push(cleanup));
  }

  return {
    get redis() {
      return redis;
    },
    get stack() {
      return stack;
    },
    get raw() {
      return raw;
    },
    connected,
    member,
    onCleanup: (cleanup) => cleanups.push(cleanup),
  };
}

/** Options of {@link fleetMember}: the store's, and the member's ID tokens. */
export interface FleetMemberOptions extends Partial<Omit<RedisTokenStoreOptions, 'client' | 'encryptionKeys'>> {
  keys?: Array<Uint8Array | string>;
  /** Awaited before each ID token is handed out. */
  idTokenGate?: Promise<void>;
  /** No `resource` configured: the MCP server is learned from its 401 (RFC 9728 §5.1). */
  learnResource?: boolean;
  /** More engine options (e.g. `dpop`). */
  engine?: Partial<CrossAppAccessEngineOptions>;
}

/**
 * One member of a fleet on `client` (any client `redisTokenStore` accepts), against `stack`; its
 * store is closed by the cleanup given to `onCleanup`.
 */
export function fleetMember(stack: Stack, client: RedisTokenStoreOptions['client'], options: FleetMemberOptions, onCleanup: (cleanup: () => Promise<unknown>) => void): Member {
  const { keys, idTokenGate: gate, learnResource, engine, ...storeOptions } = options;
  const store = redisTokenStore({ client, encryptionKeys: keys ?? [KEY1], retryAfterMs: 100, ...storeOptions });
  onCleanup(() => store.close());
  const events: CrossAppAccessEvent[] = [];
  const xaa = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    resource: learnResource ? undefined : stack.mcp.url,
    store,
    onEvent: (event) => events.push(event),
    ...engine,
  });
  const idToken = async ({ user }: { user?: string }) => {
    if (gate) await gate;
    return stack.idp.mintIdToken({ sub: user });
  };
  return {
    xaa,
    store,
    events,
    call: async (user = 'alice') => (await xaa.fetch(fetch, { user, idToken })(stack.mcp.url, listToolsInit())).status,
    token: async (user = 'alice') => (await xaa.getAccessToken({ user, idToken, url: stack.mcp.url })).token,
    diagnostics: () => events.filter((e) => e.type === 'diagnostic').map((e) => (e as { message: string }).message),
    acquisitions: () => events.filter((e) => e.type === 'token_issued' || e.type === 'token_renewed').length,
  };
}

/**
 * `client`, whose subscriber also tells `onMessage` of each message once the store has handled it:
 * Redis delivers a channel's messages to a subscriber in the order they were published, so a test
 * that publishes a marker after an event knows, once the marker is seen, that the store handled it.
 */
function tapped(client: Client, onMessage: (message: string) => void): RedisClientLike {
  return {
    get isReady() {
      return client.isReady;
    },
    sendCommand: (args) => client.sendCommand(args),
    duplicate: () => {
      const subscriber = client.duplicate();
      return {
        on: (event, listener) => subscriber.on(event, listener),
        connect: () => subscriber.connect(),
        subscribe: (channel, listener) =>
          subscriber.subscribe(channel, (message, from) => {
            listener(message, from);
            onMessage(message);
          }),
        unref: () => subscriber.unref(),
        destroy: () => subscriber.destroy(),
      };
    },
  };
}

/**
 * What a member's subscriber received, for `onMessage`: `reached(raw, marker)` publishes a marker
 * and resolves once the member has handled it, and so every message published before it.
 */
export function messageTap(channel = 'xaa:events'): { onMessage(message: string): void; reached(raw: Client, marker: string): Promise<void>; received(): string[] } {
  const seen = new Set<string>();
  const log: string[] = [];
  const waiting = new Map<string, () => void>();
  return {
    onMessage(message) {
      seen.add(message);
      log.push(message);
      waiting.get(message)?.();
    },
    async reached(raw, marker) {
      const arrived = new Promise<void>((resolve) => waiting.set(marker, resolve));
      await raw.publish(channel, marker);
      if (!seen.has(marker)) await arrived;
      waiting.delete(marker);
    },
    received: () => [...log],
  };
}
