import type { ClientAuthMethod } from '../../oauth/client-auth.js';
import { exchangeForIdJag, ID_TOKEN_TYPE, redeemIdJag, type TokenEndpoint } from '../../oauth/grants.js';
import { decodeJwt, fingerprint, numericClaim, stringClaim } from '../../oauth/jwt.js';
import { reaching } from './network.js';
import { postInitialize } from './probe-step.js';
import { difference, type FoundResource } from './resource-step.js';
import type { FoundIdp, FoundServer } from './server-steps.js';
import { Diagnosis, see, type Step } from './step.js';
import type { DoctorConfig } from './types.js';

function endpoint(url: string, config: DoctorConfig, who: 'idp' | 'client', method: ClientAuthMethod, audience: string, algs: string[] | undefined): TokenEndpoint {
  const credentials = who === 'idp' ? { clientId: config.idpClientId ?? '', clientSecret: config.idpClientSecret } : { clientId: config.clientId ?? '', clientSecret: config.clientSecret };
  return { fetch, url, credentials, method, timeoutMs: config.timeoutMs, assertion: { audience, supportedAlgs: algs, now: Date.now, option: who } };
}

/** The ID-JAG's claims against what this setup needs (draft-ietf-oauth-identity-assertion-authz-grant-04 §3): each mismatch named. */
function checkClaims(idJag: string, as: FoundServer, found: FoundResource, config: DoctorConfig, step: Step): void {
  const jwt = decodeJwt(idJag);
  if (!jwt) {
    step.note('warning: the ID-JAG is not a readable JWT (encrypted?): its claims were not checked');
    return;
  }
  const c = jwt.claims;
  const aud = Array.isArray(c.aud) ? c.aud.join(', ') : String(c.aud);
  const clientId = stringClaim(c, 'client_id');
  const resource = c.resource === undefined ? undefined : String(c.resource);
  const exp = numericClaim(c, 'exp');
  step.note(`ID-JAG claims: aud=${aud}, client_id=${clientId ?? '(none)'}, resource=${resource ?? '(none)'}, exp in ${exp === undefined ? '?' : Math.round(exp - Date.now() / 1000)} s, typ=${String(jwt.header.typ)}`);
  if (aud.replace(/\/$/, '') !== as.issuer.replace(/\/$/, '')) {
    throw new Diagnosis(`The ID-JAG's aud is \`${aud}\`, not the authorization server \`${as.issuer}\`.`, `The IdP must issue the ID-JAG for the audience it was asked for (the authorization server's issuer); check the IdP's configuration for this resource.${see('id-jag-audience')}`);
  }
  if (clientId !== undefined && config.clientId !== undefined && clientId !== config.clientId) {
    throw new Diagnosis(
      `The IdP's client mapping puts client_id \`${clientId}\` in the ID-JAG; this client is \`${config.clientId}\` at the authorization server.`,
      `Map this IdP client to \`${config.clientId}\` for that authorization server at the IdP, or use \`${clientId}\` as --client-id if that is the registration.${see('client-id-mapping')}`,
    );
  }
  if (resource !== undefined && resource !== found.resource) step.note(`warning: the ID-JAG's resource \`${resource}\` is not the server's \`${found.resource}\`${difference(found.resource, resource)}`);
}

/** Step 5: the RFC 8693 exchange at the IdP, and the ID-JAG it issued (claims checked, never shown). */
export async function tokenExchange(config: DoctorConfig, idp: FoundIdp, as: FoundServer, found: FoundResource, step: Step): Promise<string> {
  const scope = config.scope ?? found.scopesSupported?.filter((s) => s !== 'openid' && s !== 'offline_access').join(' ');
  const audience = idp.issuer ?? idp.tokenEndpoint;
  const params = { subjectToken: config.idToken ?? '', subjectTokenType: ID_TOKEN_TYPE, audience: as.issuer, resource: found.resource, scope: scope || undefined };
  const jag = await reaching(idp.tokenEndpoint, 'the IdP token endpoint', config.timeoutMs, () => exchangeForIdJag(endpoint(idp.tokenEndpoint, config, 'idp', idp.method, audience, idp.signingAlgs), params, () => undefined));
  step.note(`ID-JAG issued (fingerprint ${await fingerprint(jag.idJag)})${jag.scope ? `, scope "${jag.scope}"` : ''}`);
  checkClaims(jag.idJag, as, found, config, step);
  return jag.idJag;
}

/** Step 6: the RFC 7523 jwt-bearer grant at the authorization server. */
export async function jwtBearer(config: DoctorConfig, as: FoundServer & { method: ClientAuthMethod }, found: FoundResource, idJag: string, step: Step): Promise<string> {
  const params = { assertion: idJag, resource: found.resource, scope: config.scope };
  const granted = await reaching(as.tokenEndpoint, 'the authorization server token endpoint', config.timeoutMs, () => redeemIdJag(endpoint(as.tokenEndpoint, config, 'client', as.method, as.issuer, as.signingAlgs), params));
  step.note(`access token issued (fingerprint ${await fingerprint(granted.accessToken)}), expires_in ${granted.expiresIn ?? '(not given)'}${granted.scope ? `, scope "${granted.scope}"` : ''}`);
  return granted.accessToken;
}

/** Step 7: one authenticated MCP `initialize` (RFC 6750 §2.1). */
export async function authenticatedInitialize(config: DoctorConfig, accessToken: string, step: Step): Promise<void> {
  const response = await postInitialize(config, { authorization: `Bearer ${accessToken}` });
  step.note(`POST ${config.mcpUrl} with the token: HTTP ${response.status}`);
  if (response.status === 401 || response.status === 403) {
    throw new Diagnosis(`The MCP server refused the token (HTTP ${response.status}).`, `The authorization server issued a token this MCP server does not accept: they disagree on the resource or audience; ask the operator.${see('token-refused')}`);
  }
  if (!response.ok) throw new Diagnosis(`The MCP server answered HTTP ${response.status}.`, `Authorization worked; the MCP request itself failed: check the server.${see('mcp-request-failed')}`);
}
