import { decodeJwt, stringClaim } from '../../oauth/jwt.js';
import { Diagnosis, see } from './step.js';
import type { DoctorConfig } from './types.js';

/**
 * The "IdP" configured is the MCP server's authorization server: the ID token must go to the IdP
 * that issued it (RFC 8693 at the IdP), not to the server that redeems the ID-JAG (RFC 7523). Names
 * the ID token's `iss` when there is one to read, as the issuer to give instead.
 */
export function idpLooksLikeTheAuthorizationServer(config: DoctorConfig, why: string): Diagnosis {
  const jwt = config.idToken === undefined ? undefined : decodeJwt(config.idToken);
  const iss = jwt ? stringClaim(jwt.claims, 'iss') : undefined;
  const instead = iss === undefined ? 'the issuer of your users\' ID tokens (their `iss`)' : `the issuer of this ID token, \`${iss}\``;
  return new Diagnosis(
    `The IdP looks like the authorization server: ${why}.`,
    `--idp-issuer must name your IdP, the one that signs the users' ID tokens and exchanges them for ID-JAGs: ${instead}; the authorization server only redeems the ID-JAG.${see('idp-is-the-authorization-server')}`,
  );
}
