// The conformance client: the program that `npm run conformance` (scripts/conformance.mjs) hands to
// the official @modelcontextprotocol/conformance runner for its Enterprise-Managed Authorization
// scenario (`auth/cross-app-access-complete-flow` in 0.1.x, `auth/enterprise-managed-authorization`
// in 0.2.x) and its workload identity scenario (`auth/wif-jwt-bearer`, 0.2.x).
//
// It deliberately uses only the package's public API (imported by its own name, so Node resolves it
// through package.json `exports` to the built dist/) underneath a real MCP SDK v1 transport: what
// passes here is exactly what a user gets. Plain ESM JavaScript, so it needs no build step of its own.
//
//   node examples/conformance-client.mjs <mcp-server-url>
//
// The runner starts it as `sh -c "<command> <serverUrl>"` and passes the scenario's fixtures in
// MCP_CONFORMANCE_CONTEXT (JSON: client_id, client_secret, idp_client_id, idp_id_token, idp_issuer,
// idp_token_endpoint; for `auth/wif-jwt-bearer`: client_id, valid_jwt, wrong_audience_jwt, expired_jwt)
// and the scenario's name in MCP_CONFORMANCE_SCENARIO.
import { withCrossAppAccess } from 'cross-app-access';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** The Enterprise-Managed Authorization scenario: a user's ID token, exchanged at the IdP for an ID-JAG. */
function userFetch(ctx) {
  return withCrossAppAccess(fetch, {
    // A fixed ID token: the scenario issues one valid for an hour, more than a run needs.
    idToken: ctx.idp_id_token,
    // The IdP is configured, never learned from the MCP server. The conformance IdP accepts a bare
    // client_id (auth method `none`); it does not check IdP client authentication.
    idp: { tokenEndpoint: ctx.idp_token_endpoint, clientId: ctx.idp_client_id, authMethod: 'none' },
    // Our registration at the MCP server's authorization server. No issuer pin: the AS is discovered
    // from the server's protected-resource metadata and the credentials are bound on first use. Its
    // metadata lists only client_secret_basic, so the package must pick Basic by itself.
    client: { clientId: ctx.client_id, clientSecret: ctx.client_secret },
    // No `resource` option: the scenario gives none, so the package learns it from the 401 challenge.
  });
}

/**
 * The workload identity scenario (`auth/wif-jwt-bearer`, SEP-1933): the context carries the
 * workload's platform JWT (`valid_jwt`, issued for the authorization server's issuer, as a platform
 * would issue it when asked for that audience) and the client id. No IdP: the JWT goes straight to
 * the authorization server as the jwt-bearer assertion; its metadata allows only `none`, which the
 * package picks by itself since no secret is configured. The context's `wrong_audience_jwt` and
 * `expired_jwt` are never sent: the scenario fails a client that sends them.
 */
function workloadFetch(ctx) {
  return withCrossAppAccess(fetch, {
    assertion: () => ctx.valid_jwt,
    client: { clientId: ctx.client_id },
  });
}

async function main() {
  // The runner appends the MCP server URL as the last argument.
  const url = process.argv.at(-1);
  if (!url || !/^https?:\/\//.test(url)) {
    throw new Error(`expected the MCP server URL as the last argument, got ${JSON.stringify(url)}`);
  }
  const raw = process.env.MCP_CONFORMANCE_CONTEXT;
  if (!raw) throw new Error('MCP_CONFORMANCE_CONTEXT is not set (run this through the conformance runner)');
  const ctx = JSON.parse(raw);

  const workload = process.env.MCP_CONFORMANCE_SCENARIO === 'auth/wif-jwt-bearer';
  const authedFetch = workload ? workloadFetch(ctx) : userFetch(ctx);

  const client = new Client({ name: 'cross-app-access-conformance-client', version: '1.0.0' });
  // All of the transport's HTTP (initialize, notifications, tools/*, the optional GET stream) goes
  // through the wrapper, which answers the first 401 by running both token legs and retrying.
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: authedFetch });

  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    // The scenario's server exposes `test-tool` (inputSchema `{type: 'object'}`, no required
    // arguments); calling it is part of the normal flow the runner expects.
    for (const tool of tools) {
      if (tool.name !== 'test-tool') continue;
      const result = await client.callTool({ name: tool.name, arguments: {} });
      if (result.isError) throw new Error(`tool ${tool.name} returned an error result`);
    }
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    // Print the package's error fields (CrossAppAccessError: code, stage; never secrets) so a
    // failing run says which leg broke. The runner copies stderr into its report.
    const fields = {
      name: err?.name,
      code: err?.code,
      stage: err?.stage,
      message: err?.message ?? String(err),
    };
    console.error('conformance client failed:', JSON.stringify(fields));
    if (err?.cause) console.error('cause:', err.cause?.message ?? String(err.cause));
    process.exit(1);
  },
);
