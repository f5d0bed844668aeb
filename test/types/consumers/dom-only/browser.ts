// A consumer without @types/node (a browser or edge bundle): the DOM lib alone types the package.
import { CrossAppAccessError, crossAppAccess, withCrossAppAccess, type PrivateKeyInput } from 'cross-app-access';

declare const config: { idpSecret?: string; mcpSecret?: string };

const { privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
const key: PrivateKeyInput = privateKey;

export const authedFetch: typeof fetch = withCrossAppAccess(fetch, {
  idToken: () => 'id-token',
  idp: { issuer: 'https://acme.okta.com', clientId: 'desk-agent', clientSecret: config.idpSecret },
  client: { clientId: 'wiki-app', privateKey: key },
  resource: 'https://mcp.tools.example/team-a/mcp',
});
export const middleware = crossAppAccess({ idToken: 'id-token', idp: { tokenEndpoint: 'https://acme.okta.com/token', clientId: 'a' }, client: { clientId: 'b', clientSecret: config.mcpSecret } });
export const isOurs = (error: unknown): boolean => error instanceof CrossAppAccessError && error.stage === 'config';

// @ts-expect-error scope is a string or a list of strings
withCrossAppAccess(fetch, { idToken: 'x', idp: { tokenEndpoint: 'https://acme.okta.com/token', clientId: 'a' }, client: { clientId: 'b' }, scope: 42 });
