// A CommonJS consumer: require() resolves to dist/index.d.cts.
import lib = require('cross-app-access');

const authedFetch: typeof fetch = lib.withCrossAppAccess(fetch, {
  idToken: () => 'id-token',
  idp: { tokenEndpoint: 'https://acme.okta.com/oauth2/v1/token', clientId: 'desk-agent', clientSecret: process.env.IDP_SECRET },
  client: { clientId: 'wiki-app', clientSecret: process.env.MCP_CLIENT_SECRET },
});
const isOurs = (error: unknown): boolean => error instanceof lib.CrossAppAccessError && error.code === 'login_required';

export = { authedFetch, isOurs };
