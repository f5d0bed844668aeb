/**
 * DPoP-bound tokens (RFC 9449): `dpop: true` makes a key for this wrapper; the access token is bound
 * to it and every request carries a new proof. `getAccessToken` says the token's type and makes
 * proofs for a request sent by hand. Start `npx cross-app-access dev`, paste its `export XAA_…`
 * lines, then `npx tsx examples/dpop.ts`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CrossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
  // A fleet sharing a token store gives every process the same key instead: { privateKey: pem }.
  dpop: true,
});
const session = { user: 'alice', idToken: env('XAA_ID_TOKEN') };

const client = new Client({ name: 'example-dpop', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(env('XAA_MCP_URL')), { fetch: xaa.fetch(fetch, session) }));
const result = await client.callTool({ name: 'whoami', arguments: {} });
console.log('whoami:', (result as { content: Array<{ text: string }> }).content[0]?.text);
await client.close();

// By hand: the same token, with a proof made for this one request.
const { token, tokenType, dpopProof } = await xaa.getAccessToken({ ...session, url: env('XAA_MCP_URL') });
const response = await fetch(env('XAA_MCP_URL'), {
  method: 'POST',
  headers: {
    authorization: `${tokenType} ${token}`,
    ...(dpopProof ? { dpop: await dpopProof('POST', env('XAA_MCP_URL')) } : {}),
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
});
console.log(`by hand: ${tokenType} token, tools/list ${response.status}`);
