/**
 * A whole gateway: N users from K enterprises (each with its own IdP) × M MCP servers, each behind
 * its own authorization server with its own registration of the gateway (`dev --idps K --servers M`,
 * in-process). Ours: one `CrossAppAccess` with lists of IdPs, registrations and resources, the user
 * and their IdP resolved per request from AsyncLocalStorage. The SDK: one `CrossAppAccessProvider`
 * per user and server, as documented, each configured with that server's registration and the
 * user's IdP. Every call is one MCP `initialize` POST; the requests each call makes are counted
 * (attributed through AsyncLocalStorage): the first user's first call to each server, then users
 * 2..N's (the target for ours: 3, the exchange, the grant and the request). Also: metadata requests
 * in all, and the heap held per user once every user has a token for every server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CrossAppAccessProvider, requestJwtAuthorizationGrant, withOAuth } from '@modelcontextprotocol/client';
import { CrossAppAccess } from 'cross-app-access';
import { startDevGateway, type DevGateway } from '../src/cli/dev/gateway.js';
import { counting, driveCalls, initialize, type Contender } from './gateway-calls.js';
import type { GatewayRow } from './gateway.js';

/** A row of the gateway table (see gateway.ts), with the number of enterprises. */
export interface TenantsRow extends GatewayRow {
  enterprises: number;
}

export interface TenantsResult {
  servers: number;
  enterprises: number;
  rows: TenantsRow[];
}

interface User {
  key: string;
  enterprise: number;
}

/** User `i` of a run: enterprises take turns. */
const userOf = (i: number, enterprises: number): User => ({ key: `user-${i}`, enterprise: i % enterprises });

function ours(gateway: DevGateway, users: number): Contender {
  const { config } = gateway;
  const context = new AsyncLocalStorage<User>();
  const { counts, fetch: countingFetch } = counting();
  let xaa: CrossAppAccess | undefined = new CrossAppAccess({
    idp: config.idps.map(({ issuer, clientId }) => ({ issuer, clientId })),
    client: config.servers.map(({ asIssuer, clientId, clientSecret }) => ({ issuer: asIssuer, clientId, clientSecret })),
    resource: config.servers.map((s) => s.mcpUrl),
    oauthFetch: countingFetch,
    maxCachedTokens: users * config.servers.length,
  });
  let gatewayFetch: typeof fetch | undefined = xaa.fetch(countingFetch, {
    user: () => context.getStore()?.key,
    idp: () => {
      const user = context.getStore();
      return user && config.idps[user.enterprise]!.issuer;
    },
    idToken: ({ user }) => gateway.idps[context.getStore()!.enterprise]!.mintIdToken({ sub: user }),
  });
  return {
    call: (user, server) => context.run(userOf(user, config.idps.length), () => gatewayFetch!(config.servers[server]!.mcpUrl, initialize())),
    counts,
    dispose() {
      xaa = undefined;
      gatewayFetch = undefined;
    },
  };
}

function sdk(gateway: DevGateway): Contender {
  const { config } = gateway;
  const { counts, fetch: countingFetch } = counting();
  const fetches = new Map<string, typeof fetch>();
  return {
    call(userIndex, server) {
      const user = userOf(userIndex, config.idps.length);
      const key = `${user.enterprise} ${user.key} ${server}`;
      let authed = fetches.get(key);
      const registration = config.servers[server]!;
      if (!authed) {
        const idp = gateway.idps[user.enterprise]!;
        const provider = new CrossAppAccessProvider({
          assertion: async (ctx) =>
            (
              await requestJwtAuthorizationGrant({
                tokenEndpoint: idp.tokenEndpoint,
                audience: ctx.authorizationServerUrl,
                resource: ctx.resourceUrl,
                idToken: await idp.mintIdToken({ sub: user.key }),
                clientId: idp.clientId,
                scope: ctx.scope,
                fetchFn: ctx.fetchFn,
              })
            ).jwtAuthGrant,
          clientId: registration.clientId,
          clientSecret: registration.clientSecret,
          expectedIssuer: registration.asIssuer,
          fetchFn: countingFetch,
        });
        authed = withOAuth(provider, registration.mcpUrl)(countingFetch) as typeof fetch;
        fetches.set(key, authed);
      }
      return authed(registration.mcpUrl, initialize());
    },
    counts,
    dispose: () => fetches.clear(),
  };
}

function reset(gateway: DevGateway): void {
  for (const server of [...gateway.idps, ...gateway.authorizationServers, ...gateway.mcpServers]) server.reset();
}

async function run(gateway: DevGateway, name: 'ours' | 'sdk', users: number, make: () => Contender): Promise<TenantsRow> {
  reset(gateway);
  const servers = gateway.mcpServers.length;
  const driven = await driveCalls(users, servers, make);
  const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
  return {
    contender: name,
    users,
    servers,
    enterprises: gateway.idps.length,
    calls: users * servers,
    ...driven,
    exchanges: sum(gateway.idps.map((idp) => idp.counters.exchange)),
    grants: sum(gateway.authorizationServers.map((as) => as.counters.grant)),
  };
}

export async function measureGatewayTenants(settings: { users: number[]; sdkUsers: number[]; servers: number; enterprises: number }): Promise<TenantsResult> {
  // The SDK needs an authorization_endpoint in RFC 8414 metadata (see contenders.ts): both contenders get one.
  const gateway = await startDevGateway({ idps: settings.enterprises, servers: settings.servers, authorizationEndpoint: true });
  try {
    const rows: TenantsRow[] = [];
    for (const users of settings.users) {
      rows.push(await run(gateway, 'ours', users, () => ours(gateway, users)));
      if (settings.sdkUsers.includes(users)) rows.push(await run(gateway, 'sdk', users, () => sdk(gateway)));
    }
    return { servers: settings.servers, enterprises: settings.enterprises, rows };
  } finally {
    await gateway.close();
  }
}

// Run alone: node --expose-gc --import tsx bench/gateway-tenants.ts (after npm run build).
if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await measureGatewayTenants({ users: [10, 100], sdkUsers: [10, 100], servers: 5, enterprises: 3 });
  console.table(result.rows.map(({ laterUsersRoundTrips, ...row }) => ({ ...row, later: laterUsersRoundTrips && `${laterUsersRoundTrips.median} (${laterUsersRoundTrips.min}-${laterUsersRoundTrips.max})` })));
}
