/**
 * ky on the wrapped fetch: `ky.create({ fetch: authedFetch })`. Every request the instance makes
 * carries the user's access token; ky's hooks, retries and JSON helpers work as usual.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/ky.ts`.
 */
import ky from 'ky';
import { withCrossAppAccess } from 'cross-app-access';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const authedFetch = withCrossAppAccess(fetch, {
  idToken: env('XAA_ID_TOKEN'), // in your app: the signed-in user's ID token from your SSO session
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});

const mcp = ky.create({
  fetch: authedFetch,
  headers: { accept: 'application/json, text/event-stream' },
  hooks: { afterResponse: [(request, _options, response) => console.log(`ky: ${request.method} ${new URL(request.url).pathname} ${response.status}`)] },
});

interface JsonRpcResult<T> {
  result: T;
}
const rpc = <T>(id: number, method: string, params: object) =>
  mcp.post(env('XAA_MCP_URL'), { json: { jsonrpc: '2.0', id, method, params } }).json<JsonRpcResult<T>>();

const listed = await rpc<{ tools: Array<{ name: string }> }>(1, 'tools/list', {});
console.log('tools:', listed.result.tools.map((t) => t.name).join(', '));
const called = await rpc<{ content: Array<{ text: string }> }>(2, 'tools/call', { name: 'whoami', arguments: {} });
console.log('whoami:', called.result.content[0]?.text);
