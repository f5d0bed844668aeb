/**
 * One user beneath an MCP SDK v2 transport (`@modelcontextprotocol/client`): the same wrapped fetch.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/mcp-sdk-v2.ts`.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { withCrossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const authedFetch = withCrossAppAccess(fetch, {
  idToken: env('XAA_ID_TOKEN'),
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

const client = new Client({ name: 'example-mcp-sdk-v2', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')), { fetch: authedFetch }));
const text = (result: unknown) => (result as { content: Array<{ text: string }> }).content[0]?.text;
console.log('tools:', (await client.listTools()).tools.map((t) => t.name).join(', '));
console.log('whoami:', text(await client.callTool({ name: 'whoami', arguments: {} })));
await client.close();
