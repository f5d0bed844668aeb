import { chooseClientAuth, AS_AUTH_PREFERENCE, IDP_AUTH_PREFERENCE, type ClientAuthMethod } from '../../oauth/client-auth.js';
import { idpMetadataUrls, serverMetadataUrls } from '../../oauth/discovery.js';
import { requireSecureUrl } from '../../url-rules.js';
import { firstDocument } from './documents.js';
import { idpLooksLikeTheAuthorizationServer } from './idp-identity.js';
import { difference, type FoundResource } from './resource-step.js';
import { Diagnosis, see, type Step } from './step.js';
import type { DoctorConfig } from './types.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';

export interface FoundServer {
  issuer: string;
  tokenEndpoint: string;
  authMethods: string[] | undefined;
  signingAlgs: string[] | undefined;
  body: Record<string, unknown>;
}

export interface FoundIdp {
  tokenEndpoint: string;
  method: ClientAuthMethod;
  issuer: string | undefined;
  signingAlgs: string[] | undefined;
}

/** RFC 8414 / OpenID Discovery metadata of `issuer`, at the library's URLs, with the issuer compared exactly (RFC 8414 §3.3). */
async function serverMetadata(issuer: string, who: 'authorization server' | 'IdP', config: DoctorConfig, step: Step): Promise<FoundServer> {
  const issuerUrl = requireSecureUrl(issuer, `The ${who} issuer`, 'discovery');
  const found = await firstDocument(who === 'IdP' ? idpMetadataUrls(issuerUrl) : serverMetadataUrls(issuerUrl), `the ${who} metadata`, config, step);
  if (!found) {
    throw new Diagnosis(`No metadata was found for the ${who} issuer ${issuer}.`, `Check the ${who} issuer (RFC 8414 and OpenID Discovery URLs were tried)${who === 'IdP' ? ', or give --idp-token-endpoint' : ''}.${see('no-metadata')}`);
  }
  const body = found.body;
  if (body.issuer !== issuer) {
    throw new Diagnosis(
      `The ${who}'s metadata names issuer \`${String(body.issuer)}\`, not \`${issuer}\`.`,
      `The ${who}'s issuer is \`${String(body.issuer)}\`${typeof body.issuer === 'string' ? difference(body.issuer, issuer) : ''}; issuers are compared exactly (RFC 8414 §3.3): configure it exactly so, or have the ${who} publish what it is named by.${see('issuer-mismatch')}`,
    );
  }
  if (typeof body.token_endpoint !== 'string') throw new Diagnosis(`The ${who}'s metadata has no token_endpoint.`, `The ${who} publishes invalid metadata; ask its operator.${see('invalid-metadata')}`);
  requireSecureUrl(body.token_endpoint, `The token endpoint of ${issuer}`, 'discovery');
  const list = (name: string) => (Array.isArray(body[name]) ? (body[name] as string[]) : undefined);
  step.note(`issuer: ${issuer} (identical)`);
  step.note(`token_endpoint: ${body.token_endpoint}`);
  return { issuer, tokenEndpoint: body.token_endpoint, authMethods: list('token_endpoint_auth_methods_supported'), signingAlgs: list('token_endpoint_auth_signing_alg_values_supported'), body };
}

/** The ID-JAG profile or the jwt-bearer grant, as the library requires them (draft-ietf-oauth-identity-assertion-authz-grant-04 §7.2). */
function checkGrantSupport(body: Record<string, unknown>, step: Step): void {
  const grants = body.grant_types_supported;
  const profiles = body.authorization_grant_profiles_supported;
  if (Array.isArray(profiles)) {
    if (!profiles.includes(ID_JAG_PROFILE)) throw new Diagnosis('authorization_grant_profiles_supported does not list the ID-JAG profile.', `This authorization server does not accept ID-JAGs (enterprise-managed authorization); ask its operator to enable the profile.${see('id-jag-profile-not-listed')}`);
    step.note('ID-JAG profile: listed');
    if (Array.isArray(grants) && !grants.includes(JWT_BEARER)) step.note('warning: grant_types_supported does not list jwt-bearer (the ID-JAG profile is listed; trying anyway)');
    return;
  }
  step.note('warning: authorization_grant_profiles_supported is absent (the ID-JAG profile is not announced; trying anyway)');
  if (Array.isArray(grants)) {
    if (!grants.includes(JWT_BEARER)) throw new Diagnosis('grant_types_supported does not list jwt-bearer.', `This authorization server does not accept the RFC 7523 jwt-bearer grant; ask its operator to enable it for enterprise-managed authorization.${see('jwt-bearer-not-listed')}`);
    step.note('jwt-bearer grant: listed');
  }
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
  checkGrantSupport(as.body, step);
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

/** What the earlier steps found about the MCP server's side, to tell the IdP apart from it. */
export interface MetadataSoFar {
  found: FoundResource | undefined;
  as: FoundServer | undefined;
}

/** Step 4: the IdP's metadata (when an issuer is given) and its token exchange support (draft-ietf-oauth-identity-assertion-authz-grant-04 §7.1). */
export async function idpMetadata(config: DoctorConfig, soFar: MetadataSoFar, step: Step): Promise<FoundIdp> {
  const credentials = { clientId: config.idpClientId ?? '', clientSecret: config.idpClientSecret, authMethod: config.idpAuthMethod };
  if (config.idpIssuer === undefined) {
    const tokenEndpoint = requireSecureUrl(config.idpTokenEndpoint ?? '', 'The IdP token endpoint', 'discovery').href;
    step.note(`token endpoint (configured): ${tokenEndpoint}`);
    if (soFar.as && config.idpTokenEndpoint === soFar.as.tokenEndpoint) throw idpLooksLikeTheAuthorizationServer(config, `--idp-token-endpoint is the token endpoint of the MCP server's authorization server (${soFar.as.issuer})`);
    return { tokenEndpoint: config.idpTokenEndpoint!, method: chooseClientAuth(credentials, undefined, IDP_AUTH_PREFERENCE, 'The IdP', 'token_exchange'), issuer: undefined, signingAlgs: undefined };
  }
  const idp = await serverMetadata(config.idpIssuer, 'IdP', config, step);
  const grants = idp.body.grant_types_supported;
  const profiles = idp.body.authorization_grant_profiles_supported;
  // Checked before the auth method: an "IdP" that is the authorization server fails there, misleadingly.
  if (soFar.as?.issuer === idp.issuer || soFar.found?.authorizationServers.includes(idp.issuer)) {
    throw idpLooksLikeTheAuthorizationServer(config, `the IdP issuer ${idp.issuer} is the MCP server's authorization server`);
  }
  if (Array.isArray(profiles) && profiles.includes(ID_JAG_PROFILE) && Array.isArray(grants) && !grants.includes(TOKEN_EXCHANGE)) {
    throw idpLooksLikeTheAuthorizationServer(config, `the IdP at ${idp.issuer} answers like an authorization server: it accepts ID-JAGs (authorization_grant_profiles_supported) and does not list token exchange`);
  }
  if (Array.isArray(grants) && !grants.includes(TOKEN_EXCHANGE)) step.note('warning: grant_types_supported does not list token exchange (RFC 8693)');
  const types = idp.body.identity_chaining_requested_token_types_supported;
  if (Array.isArray(types) && !types.includes(ID_JAG_TYPE)) step.note('warning: identity_chaining_requested_token_types_supported does not list the ID-JAG type');
  const method = chooseClientAuth(credentials, idp.authMethods, IDP_AUTH_PREFERENCE, 'The IdP', 'token_exchange');
  step.note(`client authentication: ${method}`);
  return { tokenEndpoint: idp.tokenEndpoint, method, issuer: idp.issuer, signingAlgs: idp.signingAlgs };
}
