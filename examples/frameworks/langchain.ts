/**
 * LangChain.js (`@langchain/mcp-adapters`): `loadMcpTools` over your own MCP SDK client, whose
 * transport takes the wrapped fetch. (`MultiServerMCPClient` takes no fetch; its `authProvider` is
 * the older OAuthClientProvider, which runs its own token request after a 401.) Node 20 or later.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx langchain.ts`.
 */
import { loadMcpTools } from '@langchain/mcp-adapters';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { withCrossAppAccess } from 'cross-app-access';
import { env } from './env.ts';

const authedFetch = withCrossAppAccess(fetch, {
  idToken: env('XAA_ID_TOKEN'), // the signed-in user's ID token (from your SSO session)
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

const client = new Client({ name: 'langchain-example', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')), { fetch: authedFetch }));
try {
  const tools = await loadMcpTools('dev', client); // LangChain tools, ready for an agent or model.bindTools(tools)
  console.log('tools:', tools.map((t) => t.name).join(', '));
  const whoami = tools.find((t) => t.name === 'whoami')!;
  console.log('whoami:', await whoami.invoke({}));
} finally {
  await client.close();
}
