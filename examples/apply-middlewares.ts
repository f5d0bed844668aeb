/**
 * `crossAppAccess` as an MCP SDK middleware, composed with the SDK's `withLogging`. In
 * `applyMiddlewares` the first middleware listed is the closest to the network, so the logger listed
 * after `crossAppAccess` sees the caller's requests and final responses, never token requests or tokens.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/apply-middlewares.ts`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { applyMiddlewares, withLogging } from '@modelcontextprotocol/sdk/client/middleware.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { crossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const authedFetch = applyMiddlewares(
  crossAppAccess({
    idToken: env('XAA_ID_TOKEN'),
    idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
    client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
    resource: env('XAA_MCP_URL'),
  }),
  withLogging({ logger: ({ method, url, status }) => console.log(`log: ${method} ${new URL(url).pathname} ${status}`) }),
)(fetch);

const client = new Client({ name: 'example-apply-middlewares', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')), { fetch: authedFetch }));
const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
console.log('whoami:', result.content[0]?.text);
await client.close();
