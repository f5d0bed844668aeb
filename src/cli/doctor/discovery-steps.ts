import { bearerChallenge, type BearerChallenge } from '../../oauth/challenge.js';
import { chooseClientAuth, AS_AUTH_PREFERENCE, IDP_AUTH_PREFERENCE, type ClientAuthMethod } from '../../oauth/client-auth.js';
import { protectedResourceUrls, serverMetadataUrls } from '../../oauth/discovery.js';
import { MAX_METADATA_BYTES, requestJson } from '../../oauth/http.js';
import { parseUrl, requireSecureUrl } from '../../url-rules.js';
import { Diagnosis, see, type Step } from './step.js';
import type { DoctorConfig } from './types.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';

/** An MCP `initialize` request, as a client's first request is. */
export function initializeRequest(): { method: string; headers: Record<string, string>; body: string } {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cross-app-access-doctor', version: '1' } } }),
  };
}

/** Step 1: the MCP server answers an unauthenticated request with 401 and a Bearer challenge (RFC 6750 §3, RFC 9728 §5.1). */
export async function probe(config: DoctorConfig, step: Step): Promise<BearerChallenge> {
  const response = await fetch(config.mcpUrl, { ...initializeRequest(), redirect: 'manual', signal: AbortSignal.timeout(config.timeoutMs) });
  await response.body?.cancel();
  step.note(`POST ${config.mcpUrl} without a token: HTTP ${response.status}`);
  if (response.status >= 300 && response.status < 400) {
    throw new Diagnosis(`The MCP server redirects (to ${response.headers.get('location') ?? 'nowhere'}).`, `Use the final URL of the MCP endpoint: tokens never follow a redirect out of the resource.${see('redirects')}`);
  }
  if (response.status !== 401) {
    throw new Diagnosis('The MCP server did not answer 401 to a request without a token.', response.ok ? `The server does not require authorization at this URL: check that this is the protected MCP endpoint.${see('no-401')}` : `Check the URL: the server answered HTTP ${response.status}.${see('no-401')}`);
  }
  const challenge = bearerChallenge(response.headers);
  if (!challenge) {
    throw new Diagnosis('The 401 has no Bearer challenge in WWW-Authenticate.', `The MCP server must answer 401 with \`WWW-Authenticate: Bearer resource_metadata="…"\` (RFC 9728 §5.1); ask its operator.${see('no-401')}`);
  }
  step.note(`Bearer challenge: resource_metadata=${challenge.resourceMetadata ?? '(none)'}${challenge.scope ? `, scope="${challenge.scope}"` : ''}`);
  return challenge;
}

export interface FoundResource {
  resource: string;
  authorizationServers: string[];
  scopesSupported: string[] | undefined;
}

/** Step 2: the protected-resource metadata (RFC 9728 §3), where it was found, and its `resource`. */
export async function protectedResource(config: DoctorConfig, challenge: BearerChallenge, step: Step): Promise<FoundResource> {
  const target = requireSecureUrl(config.mcpUrl, 'The MCP server URL', 'discovery');
  for (const url of protectedResourceUrls(target, challenge.resourceMetadata)) {
    const result = await requestJson({ fetch, url, what: 'the protected-resource metadata', stage: 'discovery', timeoutMs: config.timeoutMs, maxBytes: MAX_METADATA_BYTES }).catch(() => undefined);
    if (!result?.ok) {
      step.note(`${url}: ${result ? `HTTP ${result.status}` : 'no usable answer'}`);
      continue;
    }
    const { resource, authorization_servers: servers, scopes_supported: scopes } = result.body;
    step.note(`found at ${url}`);
    if (typeof resource !== 'string' || !Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string')) {
      throw new Diagnosis(`The metadata at ${url} lacks resource or authorization_servers.`, `The MCP server publishes invalid RFC 9728 metadata; ask its operator.${see('invalid-metadata')}`);
    }
    step.note(`resource: ${resource}`);
    step.note(`authorization_servers: ${servers.join(', ')}`);
    if (Array.isArray(scopes)) step.note(`scopes_supported: ${scopes.join(' ')}`);
    if (config.resource !== undefined && config.resource !== resource) {
      throw new Diagnosis(`The server names resource \`${resource}\`; you configured \`${config.resource}\`.`, `Set resource to exactly \`${resource}\`${difference(resource, config.resource)}.${see('resource-mismatch')}`);
    }
    const resourceUrl = parseUrl(resource);
    if (!resourceUrl || resourceUrl.origin !== target.origin) {
      throw new Diagnosis(`The metadata names resource \`${resource}\`, on another origin than ${target.origin}.`, `The metadata must describe this server (RFC 9728 §3.3); ask its operator, or check that the URL is the MCP endpoint.${see('resource-on-another-origin')}`);
    }
    return { resource, authorizationServers: servers as string[], scopesSupported: Array.isArray(scopes) ? (scopes as string[]) : undefined };
  }
  throw new Diagnosis('No protected-resource metadata was found at any of those URLs.', `The MCP server must publish RFC 9728 metadata (its 401 challenge's resource_metadata, or /.well-known/oauth-protected-resource); ask its operator.${see('no-metadata')}`);
}

/** What one URL's difference from another is, when it is a usual one (a slash, localhost against 127.0.0.1). */
export function difference(actual: string, configured: string): string {
  if (actual.replace(/\/$/, '') === configured.replace(/\/$/, '')) return actual.endsWith('/') ? ', with its trailing slash' : ', without a trailing slash';
  const a = parseUrl(actual);
  const c = parseUrl(configured);
  if (a && c && a.pathname === c.pathname && a.port === c.port && a.hostname !== c.hostname) return ` (the host differs: ${a.hostname}, not ${c.hostname})`;
  return '';
}

export interface FoundServer {
  issuer: string;
  tokenEndpoint: string;
  authMethods: string[] | undefined;
  signingAlgs: string[] | undefined;
  body: Record<string, unknown>;
}

/** RFC 8414 / OpenID Discovery metadata of `issuer`, with the issuer compared exactly (RFC 8414 §3.3). */
async function serverMetadata(issuer: string, who: string, config: DoctorConfig, step: Step): Promise<FoundServer> {
  const issuerUrl = requireSecureUrl(issuer, `The ${who} issuer`, 'discovery');
  for (const url of serverMetadataUrls(issuerUrl)) {
    const result = await requestJson({ fetch, url, what: `the ${who} metadata`, stage: 'discovery', timeoutMs: config.timeoutMs, maxBytes: MAX_METADATA_BYTES }).catch(() => undefined);
    if (!result?.ok) {
      step.note(`${url}: ${result ? `HTTP ${result.status}` : 'no usable answer'}`);
      continue;
    }
    step.note(`found at ${url}`);
    const body = result.body;
    if (body.issuer !== issuer) {
      throw new Diagnosis(
        `The ${who}'s metadata names issuer \`${String(body.issuer)}\`, not \`${issuer}\`.`,
        `The ${who}'s issuer is \`${String(body.issuer)}\`${typeof body.issuer === 'string' ? difference(body.issuer, issuer) : ''}; issuers are compared exactly (RFC 8414 §3.3): configure it exactly so, or have the ${who} publish what it is named by.${see('issuer-mismatch')}`,
      );
    }
    if (typeof body.token_endpoint !== 'string') throw new Diagnosis(`The ${who}'s metadata has no token_endpoint.`, `The ${who} publishes invalid metadata; ask its operator.${see('invalid-metadata')}`);
    const list = (name: string) => (Array.isArray(body[name]) ? (body[name] as string[]) : undefined);
    step.note(`issuer: ${issuer} (identical)`);
    step.note(`token_endpoint: ${body.token_endpoint}`);
    return { issuer, tokenEndpoint: body.token_endpoint, authMethods: list('token_endpoint_auth_methods_supported'), signingAlgs: list('token_endpoint_auth_signing_alg_values_supported'), body };
  }
  throw new Diagnosis(`No metadata was found for the ${who} issuer ${issuer}.`, `Check the ${who} issuer (RFC 8414 and OpenID Discovery URLs were tried)${who === 'IdP' ? ', or give --idp-token-endpoint' : ''}.${see('no-metadata')}`);
}

/** Step 3: the authorization server: chosen as the client would, its metadata, the ID-JAG profile, the auth method. */
export async function authorizationServer(config: DoctorConfig, found: FoundResource, step: Step): Promise<FoundServer & { method: ClientAuthMethod }> {
  const issuer = config.clientIssuer ?? (found.authorizationServers[0] as string);
  if (config.clientIssuer !== undefined && !found.authorizationServers.includes(config.clientIssuer)) {
    const close = found.authorizationServers.find((s) => difference(s, config.clientIssuer!) !== '');
    throw new Diagnosis(
      `The resource is guarded by ${found.authorizationServers.join(', ')}, not by the pinned ${config.clientIssuer}.`,
      close ? `Pin client.issuer to exactly \`${close}\`${difference(close, config.clientIssuer)}.${see('wrong-authorization-server')}` : `This client is registered at another authorization server than the one guarding this resource.${see('wrong-authorization-server')}`,
    );
  }
  const as = await serverMetadata(issuer, 'authorization server', config, step);
  const grants = as.body.grant_types_supported;
  const profiles = as.body.authorization_grant_profiles_supported;
  if (Array.isArray(profiles)) {
    if (!profiles.includes(ID_JAG_PROFILE)) throw new Diagnosis('authorization_grant_profiles_supported does not list the ID-JAG profile.', `This authorization server does not accept ID-JAGs (enterprise-managed authorization); ask its operator to enable the profile.${see('id-jag-profile-not-listed')}`);
    step.note('ID-JAG profile: listed');
  } else step.note('warning: authorization_grant_profiles_supported is absent (the ID-JAG profile is not announced; trying anyway)');
  if (Array.isArray(grants)) {
    if (!grants.includes(JWT_BEARER)) throw new Diagnosis('grant_types_supported does not list jwt-bearer.', `This authorization server does not accept the RFC 7523 jwt-bearer grant; ask its operator to enable it for enterprise-managed authorization.${see('jwt-bearer-not-listed')}`);
    step.note('jwt-bearer grant: listed');
  }
  step.note(`token_endpoint_auth_methods_supported: ${as.authMethods?.join(', ') ?? '(absent: client_secret_basic)'}`);
  const credentials = { clientId: config.clientId ?? '', clientSecret: config.clientSecret, authMethod: config.authMethod };
  let method: ClientAuthMethod;
  try {
    method = chooseClientAuth(credentials, as.authMethods, AS_AUTH_PREFERENCE, 'The authorization server', 'discovery');
  } catch {
    throw new Diagnosis(
      `No listed method fits this client (${config.authMethod ? `--auth-method ${config.authMethod}` : config.clientSecret ? 'a secret' : 'no secret'}).`,
      config.authMethod
        ? `Set --auth-method to one the server lists (${as.authMethods?.join(', ')}), the one the client is registered with.${see('auth-method-not-listed')}`
        : `Give the client secret in XAA_CLIENT_SECRET, or the method the client is registered with in --auth-method.${see('auth-method-not-listed')}`,
    );
  }
  step.note(`client authentication: ${method}${config.authMethod ? '' : ' (chosen automatically; --auth-method selects another)'}`);
  return { ...as, method };
}

/** Step 4: the IdP's metadata (when an issuer is given) and its token exchange support (ID-JAG draft §7.1). */
export async function idpMetadata(config: DoctorConfig, step: Step): Promise<{ tokenEndpoint: string; method: ClientAuthMethod; issuer: string | undefined; signingAlgs: string[] | undefined }> {
  const credentials = { clientId: config.idpClientId ?? '', clientSecret: config.idpClientSecret, authMethod: config.idpAuthMethod };
  if (config.idpIssuer === undefined) {
    const tokenEndpoint = requireSecureUrl(config.idpTokenEndpoint ?? '', 'The IdP token endpoint', 'discovery').href;
    step.note(`token endpoint (configured): ${tokenEndpoint}`);
    return { tokenEndpoint: config.idpTokenEndpoint!, method: chooseClientAuth(credentials, undefined, IDP_AUTH_PREFERENCE, 'The IdP', 'token_exchange'), issuer: undefined, signingAlgs: undefined };
  }
  const idp = await serverMetadata(config.idpIssuer, 'IdP', config, step);
  const grants = idp.body.grant_types_supported;
  if (Array.isArray(grants) && !grants.includes(TOKEN_EXCHANGE)) step.note('warning: grant_types_supported does not list token exchange (RFC 8693)');
  const types = idp.body.identity_chaining_requested_token_types_supported;
  if (Array.isArray(types) && !types.includes(ID_JAG_TYPE)) step.note('warning: identity_chaining_requested_token_types_supported does not list the ID-JAG type');
  const method = chooseClientAuth(credentials, idp.authMethods, IDP_AUTH_PREFERENCE, 'The IdP', 'token_exchange');
  step.note(`client authentication: ${method}`);
  return { tokenEndpoint: idp.tokenEndpoint, method, issuer: idp.issuer, signingAlgs: idp.signingAlgs };
}
