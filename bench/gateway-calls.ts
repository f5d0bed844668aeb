/**
 * What both gateway benchmarks (gateway.ts, gateway-tenants.ts) share: the MCP call they make, the
 * fetch that counts requests per call, and the schedule that drives users × servers through a
 * contender and weighs the heap it holds per user.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { median } from './stats.js';

/** Calls in flight at once after the first user's. */
const CONCURRENCY = 20;

export function heapUsed(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

export const initialize = () => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench-gateway', version: '1.0.0' } } }),
});

/** The call a request belongs to: its requests are counted there. */
export const currentCall = new AsyncLocalStorage<{ requests: number }>();

/** A fetch that counts what goes through it: in all, metadata, and for the call it belongs to. */
export function counting() {
  const counts = { metadata: 0 };
  const countingFetch = (url: string | URL | Request, init?: RequestInit) => {
    const call = currentCall.getStore();
    if (call) call.requests++;
    if (String(url instanceof Request ? url.url : url).includes('/.well-known/')) counts.metadata++;
    return fetch(url, init);
  };
  return { counts, fetch: countingFetch };
}

/** One implementation under measurement: a call as user `user` (0..N-1) to server `server` (0..M-1). */
export interface Contender {
  call(user: number, server: number): Promise<Response>;
  counts: { metadata: number };
  /** Drops every reference to the implementation, so its memory can be measured. */
  dispose(): void;
}

/** The figures of one run that both gateway tables show. */
export interface DrivenCalls {
  failures: number;
  /** Requests of the first call to each server by the first user (median over the servers). */
  firstUserRoundTrips: number;
  /** Requests of the first call to each server by users 2..N: median, min, max. */
  laterUsersRoundTrips: { median: number; min: number; max: number } | undefined;
  metadataRequests: number;
  /** Heap held per user (100 users or more), bytes. */
  heapPerUserBytes: number | undefined;
  wallMs: number;
}

/**
 * The first user alone first (learning each server), then every other user's call to every server,
 * CONCURRENCY at a time; then, from 100 users, the heap the contender holds per user (its heap alive
 * minus after dispose, forced GC).
 */
export async function driveCalls(users: number, servers: number, make: () => Contender): Promise<DrivenCalls> {
  let contender: Contender | undefined = make();
  const started = performance.now();
  const first: number[] = [];
  const later: number[] = [];
  let failures = 0;
  const one = async (user: number, server: number) => {
    const call = { requests: 0 };
    const response = await currentCall.run(call, () => contender!.call(user, server));
    if (response.status !== 200) failures++;
    await response.body?.cancel();
    (user === 0 ? first : later).push(call.requests);
  };
  for (let server = 0; server < servers; server++) await one(0, server);
  const rest = Array.from({ length: users - 1 }, (_, i) => Array.from({ length: servers }, (_, server) => [i + 1, server] as const)).flat();
  for (let i = 0; i < rest.length; i += CONCURRENCY) await Promise.all(rest.slice(i, i + CONCURRENCY).map(([user, server]) => one(user, server)));
  const wallMs = performance.now() - started;
  const metadataRequests = contender.counts.metadata;
  let heapPerUserBytes: number | undefined;
  if (users >= 100) {
    const alive = heapUsed();
    contender.dispose();
    contender = undefined;
    heapPerUserBytes = Math.round((alive - heapUsed()) / users);
  }
  return {
    failures,
    firstUserRoundTrips: median(first),
    laterUsersRoundTrips: later.length === 0 ? undefined : { median: median(later), min: Math.min(...later), max: Math.max(...later) },
    metadataRequests,
    heapPerUserBytes,
    wallMs: Math.round(wallMs),
  };
}
