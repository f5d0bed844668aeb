/**
 * Mastra with `xaa.authProvider(...)` instead of a fetch: `@mastra/mcp`'s HTTP server config takes
 * the MCP SDK v2 `AuthProvider` shape. One user per MCPClient, fixed (the provider has no request
 * context to read). What it cannot do that the fetch does: step up on a 403, replay a body, follow
 * a redirect with the token kept inside the resource (docs/gateways.md). Node 22.13 or later.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx mastra-auth-provider.ts`.
 */
import { Agent } from '@mastra/core/agent';
import type { MastraModelConfig } from '@mastra/core/llm';
import { MCPClient } from '@mastra/mcp';
import { CrossAppAccess } from 'cross-app-access';
import { devIdTokenFor, env } from './env.ts';
import { scriptedModel } from './scripted-model.ts';

const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

const user = 'carol';
const authProvider = xaa.authProvider({ user, idToken: ({ user }) => devIdTokenFor(user), url: env('XAA_MCP_URL') });
// The id names the user: Mastra keeps its clients by id (`new MCPClient` with an id in use returns that
// client, or disconnects it if its servers differ), so a shared id could hand one user another's client.
const mcp = new MCPClient({ id: `mcp-${user}`, servers: { dev: { url: new URL(env('XAA_MCP_URL')), authProvider } } });
try {
  const tools = await mcp.listTools();
  console.log('tools:', Object.keys(tools).join(', '));
  // Your model, e.g. 'openai/gpt-5' (the stand-in's cast: see mastra.ts).
  const agent = new Agent({ id: 'assistant', name: 'assistant', instructions: 'Answer with the tools you have.', model: scriptedModel('dev_whoami') as unknown as MastraModelConfig, tools });
  console.log(`${user} whoami:`, (await agent.generate('Who am I?')).text);
} finally {
  await mcp.disconnect();
}
