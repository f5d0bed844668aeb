/**
 * A gateway serving many users from one engine: the user of each request comes from an
 * AsyncLocalStorage, and each gets its own token. Two users call `whoami` at the same time.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/gateway.ts`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CrossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

/** Stands in for your session store: the dev IdP mints an ID token for any user (loopback only). */
async function idTokenFor(user: string): Promise<string> {
  const response = await fetch(`${env('XAA_ID_TOKEN_URL')}?sub=${encodeURIComponent(user)}`);
  return ((await response.json()) as { id_token: string }).id_token;
}

const requestContext = new AsyncLocalStorage<{ userId: string }>();
const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});
const gatewayFetch = xaa.fetch(fetch, {
  user: () => requestContext.getStore()?.userId, // no user: the request fails closed
  idToken: ({ user }) => idTokenFor(user),
});

/** One incoming gateway request, on behalf of `userId`. */
function handle(userId: string): Promise<string | undefined> {
  return requestContext.run({ userId }, async () => {
    const client = new Client({ name: 'example-gateway', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')), { fetch: gatewayFetch }));
    try {
      const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
      return result.content[0]?.text;
    } finally {
      await client.close();
    }
  });
}

const [alice, bob] = await Promise.all([handle('alice'), handle('bob')]);
console.log('alice:', alice);
console.log('bob:', bob);
await xaa.forget('bob'); // on sign-out
