/**
 * The undici interceptor installed as the global dispatcher: a real MCP SDK client with NO fetch
 * option (plain global fetch) and a bare `undici.request` both reach the protected MCP server signed
 * in as the user of the current request.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/undici-global.ts`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, interceptors, request, setGlobalDispatcher } from 'undici';
import { CrossAppAccess } from 'cross-app-access';
import { crossAppAccessInterceptor } from 'cross-app-access/undici';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const requestContext = new AsyncLocalStorage<{ userId: string }>();
const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});
// Redirects composed after (outside) the interceptor: every hop is checked on its own.
const dispatcher = new Agent().compose(
  crossAppAccessInterceptor(xaa, {
    user: () => requestContext.getStore()?.userId,
    // The dev IdP mints an ID token for any user (loopback only); in your app, your session store.
    idToken: async ({ user }) => {
      const response = await fetch(`${env('XAA_ID_TOKEN_URL')}?sub=${encodeURIComponent(user!)}`);
      return ((await response.json()) as { id_token: string }).id_token;
    },
  }),
  interceptors.redirect({ maxRedirections: 5 }),
);
setGlobalDispatcher(dispatcher);

await requestContext.run({ userId: 'alice' }, async () => {
  const client = new Client({ name: 'example-undici-global', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')))); // no fetch option
  const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
  console.log('MCP SDK on global fetch:', result.content[0]?.text);
  await client.close();

  const response = await request(env('XAA_MCP_URL'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
  console.log('undici.request tools/list:', response.statusCode, (await response.body.text()).includes('whoami') ? 'whoami listed' : 'no whoami');
});
await dispatcher.close();
