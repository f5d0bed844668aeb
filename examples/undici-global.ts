/**
 * `npx tsx examples/undici-global.ts` (after `npm run build`): the undici interceptor installed as
 * the global dispatcher. A local IdP, authorization server and real MCP server start on loopback;
 * then a real MCP SDK client with NO fetch option (plain global fetch) and a bare `undici.request`
 * both reach the protected MCP server signed in as the user of the current request.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, getGlobalDispatcher, interceptors, request, setGlobalDispatcher } from 'undici';
import { CrossAppAccess } from 'cross-app-access';
import { crossAppAccessInterceptor } from 'cross-app-access/undici';
import { DEFAULT_AS_CLIENT, startStack } from '../test/servers/stack.js';

const stack = await startStack();
const requestContext = new AsyncLocalStorage<{ userId: string }>();
const previous = getGlobalDispatcher();
try {
  const xaa = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    resource: stack.mcp.resource,
  });
  // Redirects composed after (outside) the interceptor: every hop is checked on its own.
  setGlobalDispatcher(
    new Agent().compose(
      crossAppAccessInterceptor(xaa, {
        user: () => requestContext.getStore()?.userId,
        idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }),
      }),
      interceptors.redirect({ maxRedirections: 5 }),
    ),
  );

  await requestContext.run({ userId: 'alice' }, async () => {
    const client = new Client({ name: 'undici-global-example', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url))); // no fetch option
    const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
    console.log('MCP SDK on global fetch:', result.content[0]?.text);
    await client.close();

    const response = await request(stack.mcp.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    console.log('undici.request:', response.statusCode, (await response.body.text()).slice(0, 60), '…');
  });
} finally {
  setGlobalDispatcher(previous);
  await stack.close();
}
