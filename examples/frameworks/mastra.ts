/**
 * Mastra (`@mastra/mcp`'s MCPClient, `@mastra/core`'s Agent) in a gateway serving many users: one
 * MCPClient per user, each on one engine's fetch. Mastra connects (initialize, tools/list) outside
 * any request, so a client shared by all users would have no user to connect as (the connect fails
 * closed, and Mastra reports no tools) and would carry one MCP session for everyone.
 * Node 22.13 or later. Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx mastra.ts`.
 */
import { Agent } from '@mastra/core/agent';
import type { MastraModelConfig } from '@mastra/core/llm';
import { RequestContext } from '@mastra/core/request-context';
import { MCPClient } from '@mastra/mcp';
import { CrossAppAccess } from 'cross-app-access';
import { devIdTokenFor, env } from './env.ts';
import { scriptedModel } from './scripted-model.ts';

const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

const clients = new Map<string, MCPClient>();

/** The user's own MCPClient (and MCP session), made on first use. */
function mcpClientFor(user: string): MCPClient {
  let client = clients.get(user);
  if (!client) {
    const fetch = xaa.fetch(globalThis.fetch, {
      // Mastra calls fetch(url, init, requestContext): the connect has none (null) and is the owner's;
      // a tool call made with another user's requestContext fails closed (unknown_user) and is never sent.
      user: (_url: unknown, _init: unknown, requestContext?: RequestContext | null) => {
        const caller = requestContext?.get('userId');
        return caller === undefined || caller === user ? user : undefined;
      },
      idToken: ({ user }) => devIdTokenFor(user), // your session store's ID token for the user
    });
    // The id names the user: Mastra keeps its clients by id (`new MCPClient` with an id in use returns that
    // client, or disconnects it if its servers differ), so a shared id could hand one user another's client.
    client = new MCPClient({ id: `mcp-${user}`, servers: { dev: { url: new URL(env('XAA_MCP_URL')), fetch } } });
    clients.set(user, client);
  }
  return client;
}

/** An agent's answer for `userId`, with the tools of `client` (namespaced: dev_whoami, dev_echo). */
async function askWhoami(client: MCPClient, userId: string): Promise<string> {
  const agent = new Agent({
    id: 'assistant',
    name: 'assistant',
    instructions: 'Answer with the tools you have.',
    // Your model, e.g. 'openai/gpt-5'. (The stand-in is typed by @ai-sdk/provider 4.0.38, the AI SDK's,
    // newer than the 4.0.17 Mastra 1.71 pins: one finish reason more, 'interrupted'; hence the cast.)
    model: scriptedModel('dev_whoami') as unknown as MastraModelConfig,
    tools: await client.listTools(),
  });
  const requestContext = new RequestContext();
  requestContext.set('userId', userId);
  return (await agent.generate('Who am I?', { requestContext })).text;
}

/** One incoming request of `user`, on the user's own client. */
const handle = (user: string) => askWhoami(mcpClientFor(user), user);

try {
  console.log('tools:', Object.keys(await mcpClientFor('alice').listTools()).join(', '));
  const [alice, bob] = await Promise.all([handle('alice'), handle('bob')]);
  console.log('alice whoami:', alice);
  console.log('bob whoami:', bob);
  // A request routed to the wrong user's client: bob's requestContext on alice's MCPClient.
  console.log("bob's call on alice's client:", await askWhoami(mcpClientFor('alice'), 'bob'));
} finally {
  await Promise.all([...clients.values()].map((c) => c.disconnect()));
}
