/**
 * One engine for a whole gateway: several enterprises (IdPs) and several MCP servers, each behind its
 * own authorization server with its own registration. Each user calls `whoami` on every server through
 * one MCP client per (user, server), kept and reused: the second call costs one HTTP request.
 * Start `npx cross-app-access dev --idps 2 --servers 3`, paste its `export XAA_GATEWAY=…` line, then
 * `npx tsx examples/gateway-many.ts`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CrossAppAccess } from 'cross-app-access';

interface DevGateway {
  idps: Array<{ issuer: string; clientId: string; idTokenUrl: string }>;
  servers: Array<{ mcpUrl: string; asIssuer: string; clientId: string; clientSecret: string }>;
}
const gateway = JSON.parse(process.env.XAA_GATEWAY ?? 'null') as DevGateway | null;
if (!gateway) throw new Error('XAA_GATEWAY is required (run: npx cross-app-access dev --idps 2 --servers 3)');

/** A user of the gateway: their enterprise (an index into gateway.idps) and their id there. */
interface User {
  enterprise: number;
  sub: string;
}
const requestContext = new AsyncLocalStorage<User>();

const xaa = new CrossAppAccess({
  idp: gateway.idps.map(({ issuer, clientId }) => ({ issuer, clientId })),
  client: gateway.servers.map(({ asIssuer, clientId, clientSecret }) => ({ issuer: asIssuer, clientId, clientSecret })),
  resource: gateway.servers.map((server) => server.mcpUrl),
});
const gatewayFetch = xaa.fetch(fetch, {
  user: () => requestContext.getStore()?.sub,
  // The request names its enterprise: the same id at two enterprises is two users.
  idp: () => {
    const user = requestContext.getStore();
    return user && gateway.idps[user.enterprise]?.issuer;
  },
  idToken: async ({ user }) => {
    // Stands in for your session store: the dev IdP mints an ID token for any user (loopback only).
    const idp = gateway.idps[requestContext.getStore()!.enterprise]!;
    const response = await fetch(`${idp.idTokenUrl}?sub=${encodeURIComponent(user)}`);
    return ((await response.json()) as { id_token: string }).id_token;
  },
});

/** One MCP client per (user, server), connected once and reused. */
const clients = new Map<string, Promise<Client>>();
function clientFor(user: User, mcpUrl: string): Promise<Client> {
  const key = JSON.stringify([user.enterprise, user.sub, mcpUrl]);
  let client = clients.get(key);
  if (!client) {
    client = (async () => {
      const connected = new Client({ name: 'example-gateway', version: '1.0.0' });
      await connected.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: gatewayFetch }));
      return connected;
    })();
    client.catch(() => clients.delete(key));
    clients.set(key, client);
  }
  return client;
}

/** One incoming gateway request: `user` calls `whoami` on a server. */
function whoami(user: User, mcpUrl: string): Promise<string | undefined> {
  return requestContext.run(user, async () => {
    const client = await clientFor(user, mcpUrl);
    const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
    return result.content[0]?.text;
  });
}

const users: User[] = gateway.idps.flatMap((_, enterprise) => [{ enterprise, sub: 'alice' }, { enterprise, sub: 'bob' }]);
for (let round = 1; round <= 2; round++) {
  await Promise.all(
    users.flatMap((user) =>
      gateway.servers.map(async (server, s) => {
        const who = await whoami(user, server.mcpUrl);
        console.log(`round ${round}: enterprise ${user.enterprise + 1} ${user.sub} @ server ${s + 1}: ${who}`);
      }),
    ),
  );
}
await Promise.all([...clients.values()].map(async (client) => (await client).close()));
