/**
 * Gateway: N users × 5 MCP servers through one `CrossAppAccess` engine (users resolved per request
 * from AsyncLocalStorage), against the SDK's `CrossAppAccessProvider` used as documented (one
 * provider, holding one token, per user and server, under `withOAuth`). Every call is one MCP
 * `initialize` POST; the requests each call makes are counted (attributed through AsyncLocalStorage,
 * so calls can run 20 at a time): the first user's first call to each server, then users 2..N's (the
 * target for ours: 3, the token exchange, the grant and the request). Also: metadata requests and
 * acquisitions in all, and the heap each implementation holds per user once every user has a token
 * for every server (its heap with the implementation alive minus without it, forced GC; the servers'
 * own memory cancels out).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CrossAppAccessProvider, requestJwtAuthorizationGrant, withOAuth } from '@modelcontextprotocol/client';
import { CrossAppAccess } from 'cross-app-access';
import { startMcpServer, type McpTestServer } from '../test/servers/mcp-server.js';
import type { Stack } from './contenders.js';
import { median } from './stats.js';

const SERVERS = 5;

export interface GatewayRow {
  contender: 'ours' | 'sdk';
  users: number;
  servers: number;
  calls: number;
  failures: number;
  /** Requests of the first call to each server by the first user (median over the servers). */
  firstUserRoundTrips: number;
  /** Requests of the first call to each server by users 2..N: median, min, max. */
  laterUsersRoundTrips: { median: number; min: number; max: number } | undefined;
  /** Well-known metadata GETs in all (protected resource, authorization server, IdP). */
  metadataRequests: number;
  /** Token exchanges at the IdP and grants at the authorization server, in all. */
  exchanges: number;
  grants: number;
  /** Heap growth per user once each holds a token for every server (forced GC before and after), bytes. */
  heapPerUserBytes: number | undefined;
  wallMs: number;
}

export interface GatewayResult {
  servers: number;
  rows: GatewayRow[];
  /** Sizes measured for the SDK (the largest is left out for time; its figures are per user). */
  sdkSizes: number[];
}

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
const CONCURRENCY = 20;

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

type CallFor = (user: string, server: McpTestServer) => Promise<Response>;

interface Contender {
  call: CallFor;
  counts: { metadata: number };
  /** Drops every reference to the implementation, so its memory can be measured. */
  dispose(): void;
}

async function run(stack: Stack, servers: McpTestServer[], name: 'ours' | 'sdk', users: number, make: () => Contender): Promise<GatewayRow> {
  stack.reset();
  let contender: Contender | undefined = make();
  const started = performance.now();
  const first: number[] = [];
  const later: number[] = [];
  let failures = 0;
  const one = async (u: number, server: McpTestServer) => {
    const call = { requests: 0 };
    const response = await currentCall.run(call, () => contender!.call(`u${users}-${u}`, server));
    if (response.status !== 200) failures++;
    await response.body?.cancel();
    (u === 0 ? first : later).push(call.requests);
  };
  // The first user alone first (learning each server), then everyone else, 20 calls at a time.
  for (const server of servers) await one(0, server);
  const rest = Array.from({ length: users - 1 }, (_, i) => servers.map((server) => [i + 1, server] as const)).flat();
  for (let i = 0; i < rest.length; i += CONCURRENCY) await Promise.all(rest.slice(i, i + CONCURRENCY).map(([u, server]) => one(u, server)));
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
    contender: name,
    users,
    servers: servers.length,
    calls: users * servers.length,
    failures,
    firstUserRoundTrips: median(first),
    laterUsersRoundTrips: later.length === 0 ? undefined : { median: median(later), min: Math.min(...later), max: Math.max(...later) },
    metadataRequests,
    exchanges: stack.idp.counters.exchange,
    grants: stack.as.counters.grant,
    heapPerUserBytes,
    wallMs: Math.round(wallMs),
  };
}

function ours(stack: Stack, users: number): Contender {
  const context = new AsyncLocalStorage<string>();
  const { counts, fetch: countingFetch } = counting();
  let xaa: CrossAppAccess | undefined = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: 'mcp-client', clientSecret: 'mcp-secret' },
    oauthFetch: countingFetch,
    maxCachedTokens: users * SERVERS,
  });
  let gatewayFetch: typeof fetch | undefined = xaa.fetch(countingFetch, { user: () => context.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user! }) });
  const call: CallFor = (user, server) => context.run(user, () => gatewayFetch!(server.url, initialize()));
  return {
    call,
    counts,
    dispose() {
      xaa = undefined;
      gatewayFetch = undefined;
    },
  };
}

function sdk(stack: Stack): Contender {
  const { counts, fetch: countingFetch } = counting();
  const fetches = new Map<string, typeof fetch>();
  const call: CallFor = (user, server) => {
    const key = `${user} ${server.url}`;
    let authed = fetches.get(key);
    if (!authed) {
      const provider = new CrossAppAccessProvider({
        assertion: async (ctx) =>
          (
            await requestJwtAuthorizationGrant({
              tokenEndpoint: stack.idp.tokenEndpoint,
              audience: ctx.authorizationServerUrl,
              resource: ctx.resourceUrl,
              idToken: await stack.idp.mintIdToken({ sub: user }),
              clientId: stack.idp.clientId,
              scope: ctx.scope,
              fetchFn: ctx.fetchFn,
            })
          ).jwtAuthGrant,
        clientId: 'mcp-client',
        clientSecret: 'mcp-secret',
        expectedIssuer: stack.as.issuer,
        fetchFn: countingFetch,
      });
      authed = withOAuth(provider, server.url)(countingFetch) as typeof fetch;
      fetches.set(key, authed);
    }
    return authed(server.url, initialize());
  };
  return { call, counts, dispose: () => fetches.clear() };
}

export async function measureGateway(stack: Stack, sizes: number[], sdkSizes: number[]): Promise<GatewayResult> {
  const extra = await Promise.all(Array.from({ length: SERVERS - 1 }, () => startMcpServer({ authorizationServer: stack.as })));
  const servers = [stack.mcp, ...extra];
  const allowed = stack.as.allowedResources;
  stack.as.allowedResources = servers.map((s) => s.resource);
  try {
    const rows: GatewayRow[] = [];
    for (const users of sizes) {
      rows.push(await run(stack, servers, 'ours', users, () => ours(stack, users)));
      if (sdkSizes.includes(users)) rows.push(await run(stack, servers, 'sdk', users, () => sdk(stack)));
    }
    return { servers: SERVERS, rows, sdkSizes };
  } finally {
    stack.as.allowedResources = allowed;
    await Promise.all(extra.map((s) => s.close()));
  }
}
