/**
 * Wrapping global fetch: every `fetch` in the process, including an MCP SDK client given no `fetch`
 * option, reaches the MCP server signed in. Set `resource` here so only that resource gets a token.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/global-fetch.ts`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { withCrossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

globalThis.fetch = withCrossAppAccess(globalThis.fetch, {
  idToken: env('XAA_ID_TOKEN'),
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

// A bare JSON-RPC request through plain fetch.
const response = await fetch(env('XAA_MCP_URL'), {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
});
const listed = (await response.json()) as { result: { tools: Array<{ name: string }> } };
console.log('fetch tools/list:', response.status, listed.result.tools.map((t) => t.name).join(', '));

// An MCP SDK client with no fetch option uses the wrapped global one.
const client = new Client({ name: 'example-global-fetch', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL'))));
const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
console.log('whoami:', result.content[0]?.text);
await client.close();
