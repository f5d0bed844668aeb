/**
 * What `cross-app-access dev --idps N --servers M` prints: one engine's options with lists, to paste,
 * and the same as `XAA_GATEWAY` (JSON) for the examples.
 */
import { renderExports } from './env.js';
import type { DevGatewayConfig } from './gateway.js';

/** The `XAA_GATEWAY` variable the gateway examples read. */
export function devGatewayEnvironment(config: DevGatewayConfig): Record<string, string> {
  return { XAA_GATEWAY: JSON.stringify(config) };
}

/** The startup text for the gateway shape. */
export function renderDevGatewayBanner(config: DevGatewayConfig): string {
  const q = (v: string) => JSON.stringify(v).replace(/^"|"$/g, "'");
  const idps = config.idps.map((idp) => `    { issuer: ${q(idp.issuer)}, clientId: ${q(idp.clientId)} },`).join('\n');
  const clients = config.servers.map((s) => `    { issuer: ${q(s.asIssuer)}, clientId: ${q(s.clientId)}, clientSecret: ${q(s.clientSecret)} },`).join('\n');
  const resources = config.servers.map((s) => `    ${q(s.mcpUrl)},`).join('\n');
  const urls = config.idps.map((idp, i) => `    ${i + 1}: ${q(idp.idTokenUrl)},`).join('\n');
  const table = [
    ...config.idps.map((idp, i) => `  IdP ${i + 1}                  ${idp.issuer}`),
    ...config.servers.map((s, j) => `  MCP server ${j + 1}           ${s.mcpUrl}   behind ${s.asIssuer} (client ${s.clientId})`),
  ].join('\n');
  return `cross-app-access dev: ${config.idps.length} IdPs and ${config.servers.length} MCP servers, each behind its own authorization server, on loopback.

${table}

Each authorization server registered the gateway separately and trusts every IdP. Options to paste:

  import { CrossAppAccess } from 'cross-app-access';

  // A fresh ID token from dev IdP n for a user key 'n:sub' (loopback only); in production, your SSO session's.
  const idTokenUrls: Record<string, string> = {
${urls}
  };
  const xaa = new CrossAppAccess({
    idp: [
${idps}
    ],
    client: [
${clients}
    ],
    resource: [
${resources}
    ],
  });
  const gatewayFetch = xaa.fetch(fetch, {
    user: () => requestContext.getStore()?.user, // e.g. '1:alice': IdP 1's alice
    idToken: async ({ user }) => {
      const [idp = '', sub = ''] = user.split(':');
      return ((await (await fetch(\`\${idTokenUrls[idp]}?sub=\${encodeURIComponent(sub)}\`)).json()) as { id_token: string }).id_token;
    },
  });

Or as an environment variable (examples/gateway-many.ts reads it):

${renderExports(devGatewayEnvironment(config))}

Requests (tokens as sha256 fingerprints, secrets never); Ctrl-C stops:
`;
}
