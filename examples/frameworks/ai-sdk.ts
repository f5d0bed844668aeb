/**
 * The Vercel AI SDK (`ai` 7, `createMCPClient` from `@ai-sdk/mcp`) on the wrapped fetch: the HTTP
 * transport takes a `fetch`, so every MCP request carries the user's access token.
 * Node 22 or later. Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx ai-sdk.ts`.
 */
import { createMCPClient } from '@ai-sdk/mcp';
import { generateText, isStepCount } from 'ai';
import { withCrossAppAccess } from 'cross-app-access';
import { env } from './env.ts';
import { scriptedModel } from './scripted-model.ts';

const authedFetch = withCrossAppAccess(fetch, {
  idToken: env('XAA_ID_TOKEN'), // the signed-in user's ID token (from your SSO session)
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

// Not `authProvider`: the AI SDK's is the older OAuthClientProvider, which runs its own token request after a 401.
const mcp = await createMCPClient({ transport: { type: 'http', url: env('XAA_MCP_URL'), fetch: authedFetch } });
try {
  const tools = await mcp.tools(); // tools/list, as AI SDK tools
  console.log('tools:', Object.keys(tools).join(', '));
  const { text } = await generateText({
    model: scriptedModel('whoami'), // your model, e.g. openai('gpt-5')
    tools,
    prompt: 'Who am I?',
    stopWhen: isStepCount(2), // the tool call, then the answer
  });
  console.log('whoami:', text);
} finally {
  await mcp.close();
}
