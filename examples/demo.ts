/**
 * `npm run demo`: the whole Cross-App Access flow on this machine, with nothing to set up.
 * It starts a local IdP, an authorization server and a real MCP server on loopback, then connects a
 * real MCP SDK client through `withCrossAppAccess` and prints each step with its timing. Tokens are
 * shown only as SHA-256 fingerprints.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { withCrossAppAccess, type CrossAppAccessEvent } from 'cross-app-access';
import { startStack } from '../test/servers/stack.js';

const started = performance.now();
const elapsed = () => `${(performance.now() - started).toFixed(0).padStart(5)} ms`;
const say = (step: string, detail = '') => console.log(`${elapsed()}  ${step.padEnd(22)} ${detail}`);

function describe(event: CrossAppAccessEvent): [string, string] {
  switch (event.type) {
    case 'discovery':
      return [`discovery (${event.document.replace('_', ' ')})`, `${event.url}  ${event.durationMs} ms`];
    case 'token_exchange':
      return ['token exchange (IdP)', `ID token -> ID-JAG, audience ${event.audience}, resource ${event.resource}  ${event.durationMs} ms`];
    case 'jwt_bearer':
      return ['jwt-bearer grant (AS)', `ID-JAG -> access token at ${event.tokenEndpoint}  ${event.durationMs} ms`];
    case 'token_issued':
    case 'token_renewed':
      return [
        event.type === 'token_issued' ? 'access token issued' : 'access token renewed',
        `sha256:${event.fingerprint}…, expires in ${event.expiresIn} s, acquired in ${event.durationMs} ms`,
      ];
    case 'token_shared':
      return ['token from the store', `sha256:${event.fingerprint}…, expires in ${event.expiresIn} s, another process acquired it`];
    case 'signed_out':
      return ['signed out', event.by === 'this_process' ? 'forget() here' : 'forget() in another process'];
    case 'token_invalidated':
      return ['token invalidated', `sha256:${event.fingerprint}… (${event.reason})`];
    case 'retry':
      return ['retry', `${event.stage} attempt ${event.attempt} failed (${event.code}${event.status ? ` ${event.status}` : ''}); next in ${event.delayMs} ms`];
    case 'step_up':
      return ['step-up', `403 asked for ${event.challenged}; now requesting ${event.scope}  ${event.durationMs} ms`];
    case 'failure':
      return ['failure', `${event.stage}/${event.code}: ${event.message}`];
    case 'diagnostic':
      return ['note', event.message];
  }
}

const stack = await startStack({ mcp: { scopesSupported: ['files:read'] } });
try {
  say('servers started', `IdP ${stack.idp.issuer}, AS ${stack.as.issuer}, MCP ${stack.mcp.url}`);
  // A simulated clock, so the demo can show a renewal ahead of expiry without waiting an hour.
  let skippedMs = 0;
  const authedFetch = withCrossAppAccess(fetch, {
    now: () => Date.now() + skippedMs,
    // In an app this comes from the user's SSO session; here the local IdP signs one for "alice".
    idToken: ({ reason }) => {
      say('ID token requested', `reason: ${reason}`);
      return stack.idp.mintIdToken({ sub: 'alice' });
    },
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: 'mcp-client', clientSecret: 'mcp-secret' },
    onEvent: (event) => say(...describe(event)),
  });

  const client = new Client({ name: 'cross-app-access-demo', version: '1.0.0' });
  say('MCP connect', `${stack.mcp.url} (no token yet: the server's 401 says where to get one)`);
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url), { fetch: authedFetch }));
  say('MCP initialized');

  const { tools } = await client.listTools();
  say('tools/list', tools.map((t) => t.name).join(', '));
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  say('tools/call whoami', (whoami.content as Array<{ text: string }>)[0]?.text ?? '');

  stack.as.revokeAll();
  say('token revoked', 'the AS forgets every token; the next call gets a 401');
  const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello after a 401' } });
  say('tools/call echo', `${(echo.content as Array<{ text: string }>)[0]?.text ?? ''} (retried once with a fresh token)`);

  stack.mcp.requiredScopes = ['files:write'];
  say('scope raised', 'the MCP server now wants files:write; the next call gets a 403 insufficient_scope');
  const stepped = await client.callTool({ name: 'whoami', arguments: {} });
  say('tools/call whoami', `${(stepped.content as Array<{ text: string }>)[0]?.text ?? ''} (after a step-up)`);

  let outages = 1;
  stack.idp.override = (req) => (req.method === 'POST' && outages-- > 0 ? { status: 503, headers: { 'retry-after': '1' }, body: 'busy' } : undefined);
  stack.as.revokeAll();
  say('IdP busy', 'the IdP answers 503 with Retry-After: 1 once, and the token is revoked again');
  await client.callTool({ name: 'echo', arguments: { text: 'retried' } });
  say('tools/call echo', 'answered after one retry of the token exchange');

  skippedMs = 56 * 60 * 1000;
  say('56 minutes later', 'simulated on our clock only (the local servers keep real time, so expect a note about clocks)');
  await client.callTool({ name: 'echo', arguments: { text: 'served at once' } });
  say('tools/call echo', 'answered with the still-valid token; the renewal runs in the background');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await client.close();

  say('done', `IdP exchanges: ${stack.idp.counters.exchange}, AS grants: ${stack.as.counters.grant}, MCP requests: ${stack.mcp.counters.requests} (${stack.mcp.counters.unauthorized} answered 401)`);
} finally {
  await stack.close();
}
