// The README's quick starts as written there, under exactOptionalPropertyTypes, with secrets from
// process.env (string | undefined).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { applyMiddlewares, withLogging } from '@modelcontextprotocol/sdk/client/middleware.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { crossAppAccess, withCrossAppAccess, type CrossAppAccessOptions } from 'cross-app-access';

declare const sso: { getIdToken(options: { forceRefresh: boolean }): Promise<string> };
declare const options: CrossAppAccessOptions;

// "Beneath an MCP SDK transport"
const authedFetch = withCrossAppAccess(fetch, {
  // The signed-in user's ID token, from your SSO session. Called only when a new token is needed.
  idToken: ({ reason }) => sso.getIdToken({ forceRefresh: reason !== 'initial' }),
  idp: { issuer: 'https://acme.okta.com', clientId: 'desk-agent', clientSecret: process.env.IDP_SECRET },
  client: { clientId: 'wiki-app', clientSecret: process.env.MCP_CLIENT_SECRET },
  resource: 'https://mcp.tools.example/team-a/mcp',
});

const client = new Client({ name: 'my-agent', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL('https://mcp.tools.example/team-a/mcp'), { fetch: authedFetch }));

// "As a middleware, composed with others"
export const composed = applyMiddlewares(withLogging(), crossAppAccess(options))(fetch);
