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
import { counting, driveCalls, initialize, type Contender, type DrivenCalls } from './gateway-calls.js';

const SERVERS = 5;

export interface GatewayRow extends DrivenCalls {
  contender: 'ours' | 'sdk';
  users: number;
  servers: number;
  calls: number;
  /** Token exchanges at the IdP and grants at the authorization server, in all. */
  exchanges: number;
  grants: number;
}

export interface GatewayResult {
  servers: number;
  rows: GatewayRow[];
  /** Sizes measured for the SDK (the largest is left out for time; its figures are per user). */
  sdkSizes: number[];
}

async function run(stack: Stack, servers: McpTestServer[], name: 'ours' | 'sdk', users: number, make: () => Contender): Promise<GatewayRow> {
  stack.reset();
  const driven = await driveCalls(users, servers.length, make);
  return {
    contender: name,
    users,
    servers: servers.length,
    calls: users * servers.length,
    ...driven,
    exchanges: stack.idp.counters.exchange,
    grants: stack.as.counters.grant,
  };
}

function ours(stack: Stack, servers: McpTestServer[], users: number): Contender {
  const context = new AsyncLocalStorage<string>();
  const { counts, fetch: countingFetch } = counting();
  let xaa: CrossAppAccess | undefined = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: 'mcp-client', clientSecret: 'mcp-secret' },
    oauthFetch: countingFetch,
    maxCachedTokens: users * SERVERS,
  });
  let gatewayFetch: typeof fetch | undefined = xaa.fetch(countingFetch, { user: () => context.getStore(), idToken: ({ user }) => stack.idp.mintIdToken({ sub: user! }) });
  return {
    call: (user, server) => context.run(`u${users}-${user}`, () => gatewayFetch!(servers[server]!.url, initialize())),
    counts,
    dispose() {
      xaa = undefined;
      gatewayFetch = undefined;
    },
  };
}

function sdk(stack: Stack, servers: McpTestServer[], users: number): Contender {
  const { counts, fetch: countingFetch } = counting();
  const fetches = new Map<string, typeof fetch>();
  const call = (userIndex: number, serverIndex: number) => {
    const user = `u${users}-${userIndex}`;
    const server = servers[serverIndex]!;
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
      rows.push(await run(stack, servers, 'ours', users, () => ours(stack, servers, users)));
      if (sdkSizes.includes(users)) rows.push(await run(stack, servers, 'sdk', users, () => sdk(stack, servers, users)));
    }
    return { servers: SERVERS, rows, sdkSizes };
  } finally {
    stack.as.allowedResources = allowed;
    await Promise.all(extra.map((s) => s.close()));
  }
}
