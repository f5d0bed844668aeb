/**
 * What `cross-app-access dev` prints once its servers listen: options to paste, the same as
 * environment variables, the client mapping, and how to get an ID token.
 */
import { devEnvironment, renderExports } from './env.js';
import type { DevConfig } from './start.js';

/** The startup text for `config`, with `idToken` (for `user`) ready to use. */
export function renderDevBanner(config: DevConfig, user: string, idToken: string): string {
  const q = (v: string) => JSON.stringify(v).replace(/^"|"$/g, "'");
  return `cross-app-access dev: a local IdP, authorization server and MCP server on loopback.

  IdP (issuer)           ${config.idpIssuer}
  authorization server   ${config.asIssuer}
  MCP server             ${config.mcpUrl}   tools: whoami, echo

Client mapping, consistent by construction:
  ID token aud (client at the IdP)            ${config.idpClientId}
  ID-JAG client_id = client registered at AS  ${config.clientId} (${config.authMethod})

Options to paste into your code:

  import { withCrossAppAccess } from 'cross-app-access';

  const authedFetch = withCrossAppAccess(fetch, {
    // A fresh ID token for ${user} from the dev IdP (loopback only); in production, your SSO session's.
    idToken: async () => ((await (await fetch(${q(`${config.idTokenUrl}?sub=${encodeURIComponent(user)}`)})).json()) as { id_token: string }).id_token,
    idp: { issuer: ${q(config.idpIssuer)}, clientId: ${q(config.idpClientId)} },
    client: { clientId: ${q(config.clientId)}, clientSecret: ${q(config.clientSecret)} },
    resource: ${q(config.mcpUrl)},
  });

Or as environment variables (the examples in examples/ and \`doctor\` read these):

${renderExports(devEnvironment(config, idToken))}

XAA_ID_TOKEN is for "${user}" and lasts an hour; another: curl '${config.idTokenUrl}?sub=bob'
Check the setup: npx cross-app-access doctor "$XAA_MCP_URL" --idp-issuer "$XAA_IDP_ISSUER" --idp-client-id "$XAA_IDP_CLIENT_ID" --client-id "$XAA_CLIENT_ID"

Requests (tokens as sha256 fingerprints, secrets never); Ctrl-C stops:
`;
}
