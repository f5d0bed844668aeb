/**
 * One user beneath an MCP SDK v1 transport: `withCrossAppAccess(fetch)` as the transport's `fetch`.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/mcp-sdk-v1.ts`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { withCrossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const authedFetch = withCrossAppAccess(fetch, {
  idToken: env('XAA_ID_TOKEN'), // in your app: the signed-in user's ID token from your SSO session
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

const client = new Client({ name: 'example-mcp-sdk-v1', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')), { fetch: authedFetch }));
const text = (result: unknown) => (result as { content: Array<{ text: string }> }).content[0]?.text;
console.log('whoami:', text(await client.callTool({ name: 'whoami', arguments: {} })));
console.log('echo:', text(await client.callTool({ name: 'echo', arguments: { text: 'hello from v1' } })));
await client.close();
