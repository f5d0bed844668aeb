/**
 * The Redis token store (issue 9), against a real `redis-server` started here on a free port (and
 * stopped at the end, also on failure) and the real loopback IdP and authorization server. The
 * target is the warm section's keep-alive server in a child process (answers 200 `ok`).
 *
 * - Warm path: `xaa.fetch(fetch)` with a cached token, the engine's store `redisTokenStore` against
 *   `memoryTokenStore` (same engine options otherwise), alternating slices; the Redis commands sent
 *   while the slices run are counted (0 expected: the warm path reads the process's own LRU). Also
 *   without the network (a `next` that answers at once), CPU per call.
 * - Cold call in a fresh engine (a new `CrossAppAccess` and a new store, standing for a new process;
 *   it shares this process's already connected Redis client, so connecting is not in the figures):
 *   (1) memory store, acquires; (2) Redis store, nothing in Redis, acquires (and saves); (3) Redis
 *   store, the token already in Redis (put there by another engine). Requests the engine makes to the
 *   IdP and the AS (token endpoints and metadata) and Redis commands are counted per call, wall time
 *   from the call to the response read. Rotating order, a new user per round.
 * - Fleet: 4 engines in this process, each with its own Redis client and store, N concurrent cold
 *   calls each for one (user, server), against 4 engines with memory stores: acquisitions (exchanges
 *   at the IdP, grants at the AS).
 *
 * Redis commands are counted by a wrapper around each client's `sendCommand` (the store sends every
 * command through it; the subscriber connection's SUBSCRIBE is not counted).
 */
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { CrossAppAccess, memoryTokenStore, type CrossAppAccessEvent, type TokenStore } from 'cross-app-access';
import { redisTokenStore, type RedisClientLike, type RedisTokenStore } from 'cross-app-access/redis';
import { redisAvailable, startRedisServer, type RedisServer } from '../test/servers/redis-server.js';
import type { FetchFn, Stack } from './contenders.js';
import { bootstrapSe, median, percentile, round } from './stats.js';
import { startWarmServer } from './warm.js';
import { cpuPerCall, okResponse, slice } from './slice.js';

export interface RedisOptions {
  warm: { concurrency: number; pairs: number; sliceMs: number; warmupMs: number };
  coldRounds: number;
  fleet: { engines: number; callsPerEngine: number; trials: number };
}

export interface RedisWarm {
  concurrency: number;
  pairs: number;
  sliceMs: number;
  redisSlices: number[];
  memorySlices: number[];
  redisMedianRps: number;
  memoryMedianRps: number;
  /** redis / memory, ratio of the medians. */
  ratio: number;
  pairedRatioMedian: number;
  pairedRatioIqr: [number, number];
  redisCpuUsPerRequest: number;
  memoryCpuUsPerRequest: number;
  /** memory CPU / redis CPU. */
  cpuRatio: number;
  /** Redis commands sent during the measured slices (0 expected). */
  redisCommands: number;
  requests: number;
  errors: number;
  /** Without the network: CPU per call through `xaa.fetch(stub)`, medians over alternating rounds, µs. */
  isolated: { calls: number; rounds: number; redisUsPerCall: number; memoryUsPerCall: number; ratio: number };
}

export type ColdVariant = 'memory-acquires' | 'redis-acquires' | 'redis-finds';

export interface RedisColdRow {
  id: ColdVariant;
  runs: number;
  failures: number;
  medianMs: number;
  medianSeMs: number;
  p90Ms: number;
  /** Median per call: token requests (exchange at the IdP + grant at the AS), metadata requests, Redis commands. */
  tokenRequests: number;
  metadataRequests: number;
  redisCommands: number;
  /** Whether the counts were the same in every run. */
  countsStable: boolean;
  /** The metadata requests of the last run, by destination and path. */
  metadataUrls: string[];
}

export interface RedisFleetRow {
  store: 'redis' | 'memory';
  engines: number;
  callsPerEngine: number;
  /** Per trial. */
  exchanges: number[];
  grants: number[];
  failures: number[];
  wallMs: number[];
  redisCommands: number[];
  diagnostics: number;
}

export type RedisResult =
  | { skipped: string }
  | {
      skipped?: undefined;
      redisVersion: string;
      warm: RedisWarm;
      cold: { rounds: number; rows: RedisColdRow[] };
      fleet: RedisFleetRow[];
      /** `diagnostic` events from the stores during the section (Redis slow or failing): 0 expected. */
      diagnostics: string[];
    };

const newClient = (url: string) => createClient({ url });
type Client = ReturnType<typeof newClient>;

/** A client whose `sendCommand` calls are counted. */
function counting(client: Client): { client: RedisClientLike; count(): number } {
  let n = 0;
  return {
    client: {
      get isReady() {
        return client.isReady;
      },
      sendCommand(args: string[]) {
        n++;
        return client.sendCommand(args);
      },
      duplicate: () => client.duplicate(),
    },
    count: () => n,
  };
}

async function connect(url: string, clients: Client[]): Promise<Client> {
  const client = newClient(url);
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  return client;
}

const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
const init = () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });



export async function measureRedis(stack: Stack, options: RedisOptions): Promise<RedisResult> {
  if (!redisAvailable) return { skipped: '`redis-server` is not on PATH on this machine, so the Redis section was not run (apt-get install -y redis-server).' };
  let redis: RedisServer | undefined;
  // Also on a crash of this process: SIGKILL is sent synchronously.
  const killOnExit = () => void redis?.kill();
  process.once('exit', killOnExit);
  const clients: Client[] = [];
  const stores: RedisTokenStore[] = [];
  const server = await startWarmServer();
  try {
    const started = (redis = await startRedisServer());
    const admin = await connect(started.url, clients);
    const redisVersion = String(((await admin.info('server')) as string).match(/redis_version:(\S+)/)?.[1] ?? 'unknown');
    const resource = `${server.origin}/redis`;
    stack.as.allowedResources = [...(stack.as.allowedResources ?? []), resource];
    const key = randomBytes(32);
    const diagnostics: string[] = [];
    const onEvent = (event: CrossAppAccessEvent) => {
      if (event.type === 'diagnostic') diagnostics.push(event.message);
    };
    // Requests the engine makes for tokens, counted by kind.
    const oauth = { token: 0, metadata: 0, urls: new Map<string, number>() };
    const oauthFetch: FetchFn = (url, init) => {
      const href = String(url instanceof Request ? url.url : url);
      if (href.includes('/.well-known/')) {
        oauth.metadata++;
        const where = href.startsWith(stack.idp.origin) ? 'IdP' : href.startsWith(stack.as.origin) ? 'AS' : href.startsWith(server.origin) ? 'resource' : 'other';
        const path = new URL(href).pathname;
        oauth.urls.set(`${where} ${path}`, (oauth.urls.get(`${where} ${path}`) ?? 0) + 1);
      } else oauth.token++;
      return fetch(url, init);
    };
    const engine = (store: TokenStore | undefined) =>
      new CrossAppAccess({
        idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
        client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
        resource,
        oauthFetch,
        onEvent,
        ...(store ? { store } : {}),
      });
    const newRedisStore = (client: RedisClientLike) => {
      const store = redisTokenStore({ client, encryptionKeys: [key] });
      stores.push(store);
      return store;
    };
    const idToken = ({ user }: { user?: string | undefined }) => stack.idp.mintIdToken({ sub: user });
    /** Lets commands sent in the background (lock release) go out before counting. */
    const settle = async () => {
      await new Promise((r) => setImmediate(r));
      await admin.ping();
    };

    // ---- Warm path -------------------------------------------------------------------------
    const warmCounted = counting(await connect(started.url, clients));
    let next: FetchFn = fetch as FetchFn;
    const viaNext: FetchFn = (url, i) => next(url, i);
    const redisXaa = engine(newRedisStore(warmCounted.client));
    const memoryXaa = engine(memoryTokenStore());
    const warmSession = { user: 'warm', idToken };
    const redisFetch = redisXaa.fetch(viaNext, warmSession);
    const memoryFetch = memoryXaa.fetch(viaNext, warmSession);
    const w = options.warm;
    const raw = { redis: () => redisFetch(resource, init()), memory: () => memoryFetch(resource, init()) };
    const send = { redis: okResponse(raw.redis), memory: okResponse(raw.memory) };
    await slice(send.redis, w.concurrency, w.warmupMs);
    await slice(send.memory, w.concurrency, w.warmupMs);
    await settle();
    const commandsBefore = warmCounted.count();
    const rps = { redis: [] as number[], memory: [] as number[] };
    const cpu = { redis: [] as number[], memory: [] as number[] };
    const pairs: number[] = [];
    let requests = 0;
    let warmErrors = 0;
    for (let i = 0; i < w.pairs; i++) {
      for (const who of i % 2 === 0 ? (['redis', 'memory'] as const) : (['memory', 'redis'] as const)) {
        const s = await slice(send[who], w.concurrency, w.sliceMs);
        rps[who].push(s.rps);
        cpu[who].push(s.cpuUs);
        requests += s.done;
        warmErrors += s.errors;
      }
      pairs.push(rps.redis.at(-1)! / rps.memory.at(-1)!);
    }
    await settle();
    const warmCommands = warmCounted.count() - commandsBefore;
    // Without the network: the same engines over a `next` that answers at once.
    const answer = new Response('ok');
    next = async () => answer;
    const iso = { redis: [] as number[], memory: [] as number[] };
    const isoCalls = 50_000;
    const isoRounds = 4;
    for (let r = 0; r < isoRounds; r++) {
      for (const who of r % 2 === 0 ? (['redis', 'memory'] as const) : (['memory', 'redis'] as const)) iso[who].push(await cpuPerCall(raw[who], isoCalls));
    }
    next = fetch as FetchFn;
    const warm: RedisWarm = {
      concurrency: w.concurrency,
      pairs: w.pairs,
      sliceMs: w.sliceMs,
      redisSlices: rps.redis.map((x) => round(x, 0)),
      memorySlices: rps.memory.map((x) => round(x, 0)),
      redisMedianRps: round(median(rps.redis), 0),
      memoryMedianRps: round(median(rps.memory), 0),
      ratio: round(median(rps.redis) / median(rps.memory), 3),
      pairedRatioMedian: round(median(pairs), 3),
      pairedRatioIqr: [round(percentile(pairs, 25), 3), round(percentile(pairs, 75), 3)],
      redisCpuUsPerRequest: round(median(cpu.redis), 1),
      memoryCpuUsPerRequest: round(median(cpu.memory), 1),
      cpuRatio: round(median(cpu.memory) / median(cpu.redis), 3),
      redisCommands: warmCommands,
      requests,
      errors: warmErrors,
      isolated: {
        calls: isoCalls,
        rounds: isoRounds,
        redisUsPerCall: round(median(iso.redis), 2),
        memoryUsPerCall: round(median(iso.memory), 2),
        ratio: round(median(iso.memory) / median(iso.redis), 3),
      },
    };

    // ---- Cold call in a fresh engine -------------------------------------------------------
    const coldCounted = counting(await connect(started.url, clients));
    const variants: ColdVariant[] = ['memory-acquires', 'redis-acquires', 'redis-finds'];
    const samples = Object.fromEntries(variants.map((v) => [v, { ms: [] as number[], token: [] as number[], metadata: [] as number[], commands: [] as number[], failures: 0, metadataUrls: [] as string[] }])) as Record<
      ColdVariant,
      { ms: number[]; token: number[]; metadata: number[]; commands: number[]; failures: number; metadataUrls: string[] }
    >;
    const coldCall = async (xaa: CrossAppAccess, user: string) => {
      const response = await xaa.fetch(fetch, { user, idToken })(resource, init());
      await response.text();
      return response.status === 200;
    };
    for (let r = 0; r < options.coldRounds + 1; r++) {
      // The token the fresh engine will find, put in Redis by another engine (not measured).
      const seeder = engine(newRedisStore(coldCounted.client));
      if (!(await coldCall(seeder, `finds-${r}`))) throw new Error('redis: the seeding call failed');
      await settle();
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      for (const v of order) {
        const xaa = engine(v === 'memory-acquires' ? memoryTokenStore() : newRedisStore(coldCounted.client));
        const user = v === 'redis-finds' ? `finds-${r}` : `${v}-${r}`;
        const before = { ...oauth, commands: coldCounted.count() };
        oauth.urls.clear();
        const started = performance.now();
        const ok = await coldCall(xaa, user);
        const ms = performance.now() - started;
        await settle();
        if (r === 0) continue; // warm-up round
        const s = samples[v];
        if (!ok) s.failures++;
        s.ms.push(ms);
        s.token.push(oauth.token - before.token);
        s.metadata.push(oauth.metadata - before.metadata);
        s.commands.push(coldCounted.count() - before.commands);
        s.metadataUrls = [...oauth.urls].map(([u, n]) => (n > 1 ? `${u} ×${n}` : u)).sort();
      }
    }
    const stable = (xs: number[]) => xs.every((x) => x === xs[0]);
    const coldRows: RedisColdRow[] = variants.map((id) => {
      const s = samples[id];
      return {
        id,
        runs: s.ms.length,
        failures: s.failures,
        medianMs: round(median(s.ms), 2),
        medianSeMs: round(bootstrapSe(s.ms, median), 2),
        p90Ms: round(percentile(s.ms, 90), 2),
        tokenRequests: median(s.token),
        metadataRequests: median(s.metadata),
        redisCommands: median(s.commands),
        countsStable: stable(s.token) && stable(s.metadata) && stable(s.commands),
        metadataUrls: s.metadataUrls,
      };
    });

    // ---- Fleet -----------------------------------------------------------------------------
    const f = options.fleet;
    const fleetClients = await Promise.all(Array.from({ length: f.engines }, async () => counting(await connect(started.url, clients))));
    const fleet: Record<'redis' | 'memory', RedisFleetRow> = {
      redis: { store: 'redis', engines: f.engines, callsPerEngine: f.callsPerEngine, exchanges: [], grants: [], failures: [], wallMs: [], redisCommands: [], diagnostics: 0 },
      memory: { store: 'memory', engines: f.engines, callsPerEngine: f.callsPerEngine, exchanges: [], grants: [], failures: [], wallMs: [], redisCommands: [], diagnostics: 0 },
    };
    for (let t = 0; t < f.trials; t++) {
      for (const kind of t % 2 === 0 ? (['redis', 'memory'] as const) : (['memory', 'redis'] as const)) {
        const user = `fleet-${kind}-${t}`;
        const engines = fleetClients.map((c) => engine(kind === 'redis' ? newRedisStore(c.client) : memoryTokenStore()));
        const fetches = engines.map((xaa) => xaa.fetch(fetch, { user, idToken }));
        const before = { exchanges: stack.idp.counters.exchange, grants: stack.as.counters.grant, commands: fleetClients.reduce((a, c) => a + c.count(), 0), diagnostics: diagnostics.length };
        const started = performance.now();
        const results = await Promise.all(
          fetches.flatMap((call) =>
            Array.from({ length: f.callsPerEngine }, async () => {
              try {
                const response = await call(resource, init());
                await response.text();
                return response.status === 200;
              } catch {
                return false;
              }
            }),
          ),
        );
        const wallMs = performance.now() - started;
        await settle();
        const row = fleet[kind];
        row.exchanges.push(stack.idp.counters.exchange - before.exchanges);
        row.grants.push(stack.as.counters.grant - before.grants);
        row.failures.push(results.filter((ok) => !ok).length);
        row.wallMs.push(Math.round(wallMs));
        row.redisCommands.push(fleetClients.reduce((a, c) => a + c.count(), 0) - before.commands);
        row.diagnostics += diagnostics.length - before.diagnostics;
      }
    }
    return { redisVersion, warm, cold: { rounds: options.coldRounds, rows: coldRows }, fleet: [fleet.redis, fleet.memory], diagnostics: [...new Set(diagnostics)] };
  } finally {
    await Promise.all(stores.map((s) => s.close().catch(() => {})));
    await Promise.all(clients.map(async (c) => c.destroy()));
    await server.close();
    await redis?.stop();
    process.removeListener('exit', killOnExit);
  }
}
