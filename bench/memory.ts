/**
 * Memory: heap used after 100,000 distinct cache keys go through this package's token cache (the
 * default `memoryTokenStore` with the engine's single-flight `Flights`, at the package's default
 * maximum), versus before; and, for contrast, with
 * a maximum large enough to keep them all. GC is forced before every reading.
 *
 * The SDK's `CrossAppAccessProvider` has no keyed cache (one token per provider instance), so there
 * is nothing to compare it with.
 */
import { randomBytes } from 'node:crypto';
import { resolveOptions } from '../src/options/resolve.js';
import { ResourceRegistry } from '../src/engine/resources.js';
import type { Discovery } from '../src/oauth/discovery.js';
import { Flights } from '../src/engine/flights.js';
import type { AccessToken } from '../src/engine/tokens.js';
import { memoryTokenStore } from '../src/stores/memory.js';

export interface MemoryCase {
  maxEntries: number;
  keys: number;
  /** Tokens held once all keys went through. */
  retained: number;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  deltaBytes: number;
}

export interface MemoryResult {
  /** The package's default `maxCachedTokens`. */
  defaultMax: number;
  atDefault: MemoryCase;
  unbounded: MemoryCase;
  sdk: string;
  /** 10,000 distinct learned resources through one engine's registry: how many are kept, and the heap they hold. */
  learned: { resources: number; kept: number; deltaBytes: number };
}

function heapUsed(): number {
  const gc = globalThis.gc;
  if (!gc) throw new Error('memory: run node with --expose-gc (npm run bench does)');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** A realistic entry: the store key is the wrapper's (issuer, client, resource, scopes) + user. */
function fakeEntry(i: number): { key: string; token: AccessToken } {
  const key = `${JSON.stringify(['https://as.example.com/tenant-7', 'mcp-client', `https://mcp-${i}.tools.example/mcp`, 'files.read files.write'])}\u0000${JSON.stringify(['https://idp.example.com', 'alice', ''])}`;
  const now = Date.now();
  const token: AccessToken = {
    value: randomBytes(32).toString('base64url'),
    expiresAt: now + 3_600_000,
    renewAt: now + 3_240_000,
    receivedAt: now,
    scope: 'files.read files.write',
    fingerprint: randomBytes(4).toString('hex'),
  };
  return { key, token };
}

async function fill(maxEntries: number, keys: number): Promise<MemoryCase> {
  const before = heapUsed();
  let store: ReturnType<typeof memoryTokenStore> | undefined = memoryTokenStore({ max: maxEntries });
  let flights: Flights | undefined = new Flights();
  const batch = 1000;
  for (let start = 0; start < keys; start += batch) {
    const pending: Promise<AccessToken>[] = [];
    for (let i = start; i < Math.min(keys, start + batch); i++) {
      const entry = fakeEntry(i);
      const stored = store;
      pending.push(flights.obtain(entry.key, async () => (stored.set(entry.key, entry.token, 'alice'), entry.token)).token);
    }
    await Promise.all(pending);
  }
  const after = heapUsed();
  const retained = store.size;
  if (flights.size !== 0) throw new Error('memory: acquisitions left in flight');
  store = undefined;
  flights = undefined;
  return { maxEntries, keys, retained, heapBeforeBytes: before, heapAfterBytes: after, deltaBytes: after - before };
}

/**
 * Heap held by the learned resources of one engine after it met `resources` distinct protected
 * resources (a wrapper around global fetch in a busy process): bounded at 1,000, least recently used
 * dropped. The authorization server's metadata comes from a stand-in (no network here: only the
 * registry's own memory is measured).
 */
async function learnedResources(resources: number): Promise<{ resources: number; kept: number; deltaBytes: number }> {
  const options = resolveOptions({ idToken: 'x', idp: { issuer: 'https://idp.example.com', clientId: 'c' }, client: { clientId: 'c', clientSecret: 's' } });
  const as = { issuer: 'https://as.example.com', tokenEndpoint: 'https://as.example.com/token', authMethods: undefined, signingAlgs: undefined };
  const discovery = { serverMetadata: async () => as } as unknown as Discovery;
  const before = heapUsed();
  let registry: ResourceRegistry | undefined = new ResourceRegistry(options, discovery);
  for (let i = 0; i < resources; i++) {
    const resource = `https://mcp-${i}.tools.example/team-${i % 7}/mcp`;
    await registry.fromMetadata({ resource, authorizationServers: [as.issuer], scopesSupported: ['files.read'], url: `${resource}/prm` }, undefined);
  }
  const deltaBytes = heapUsed() - before;
  const kept = registry.size;
  registry = undefined;
  return { resources, kept, deltaBytes };
}

export async function measureMemory(keys: number): Promise<MemoryResult> {
  const defaultMax = resolveOptions({ idToken: 'x', idp: { issuer: 'https://idp.example.com', clientId: 'c' }, client: { clientId: 'c' } }).maxCachedTokens;
  // One small run first so the code is compiled and lru-cache's allocations are not in the figures.
  await fill(defaultMax, 2000);
  const atDefault = await fill(defaultMax, keys);
  const unbounded = await fill(keys, keys);
  const learned = await learnedResources(10_000);
  return { defaultMax, atDefault, unbounded, learned, sdk: 'n/a: CrossAppAccessProvider keeps one token per provider instance and has no keyed cache' };
}
