import { CrossAppAccessError } from '../errors.js';
import type { CrossAppAccessEvent } from '../events.js';
import { decodeJwt, numericClaim, stringClaim } from './jwt.js';
import { DEFAULTS } from '../options/defaults.js';

const CLOCK_SKEW_SECONDS = DEFAULTS.idJagClockSkewSeconds;

/**
 * Advisory checks on the ID-JAG before it leaves for the authorization server. They do
 * not verify the signature (the AS does); they catch configuration mistakes early, and refuse to send
 * an ID-JAG meant for another AS (draft-ietf-oauth-identity-assertion-authz-grant-04 §8.3). A JWE (5 segments) or a non-JWT is passed through unchecked.
 */
export function checkIdJag(
  idJag: string,
  expected: { issuer: string; clientId: string; resource: string; nowMs: number },
  emit: (event: CrossAppAccessEvent) => void,
): void {
  const segments = idJag.split('.').length;
  if (segments !== 3) return;
  const jwt = decodeJwt(idJag);
  if (!jwt) {
    emit({ type: 'diagnostic', message: 'The ID-JAG could not be decoded as a JWT; sent unchecked.', durationMs: 0 });
    return;
  }
  const typ = stringClaim(jwt.header, 'typ');
  if (typ !== undefined && typ.toLowerCase() !== 'oauth-id-jag+jwt') {
    emit({ type: 'diagnostic', message: `The ID-JAG header typ is "${typ.slice(0, 50)}", not oauth-id-jag+jwt.`, durationMs: 0 });
  }
  const aud = jwt.claims.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  const trim = (s: unknown) => (typeof s === 'string' ? s.replace(/\/$/, '') : s);
  // A lone trailing-slash difference is tolerated (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.1 allows either form at the AS).
  if (audiences.length !== 1 || trim(audiences[0]) !== trim(expected.issuer)) {
    throw new CrossAppAccessError(
      `The IdP issued an ID-JAG for another audience than the authorization server ${expected.issuer}; it was not sent. Check the IdP's configuration for this resource.`,
      { code: 'id_jag_mismatch', stage: 'token_exchange' },
    );
  }
  const clientId = stringClaim(jwt.claims, 'client_id');
  if (clientId !== undefined && clientId !== expected.clientId) {
    throw new CrossAppAccessError(
      `The IdP issued an ID-JAG for client_id "${clientId.slice(0, 200)}", but this client is "${expected.clientId}" at the authorization server. Align client.clientId with the IdP's client mapping.`,
      { code: 'id_jag_mismatch', stage: 'token_exchange' },
    );
  }
  const resource = jwt.claims.resource;
  const resources = Array.isArray(resource) ? resource : resource === undefined ? [] : [resource];
  if (resources.length > 0 && !resources.includes(expected.resource)) {
    emit({ type: 'diagnostic', message: 'The ID-JAG resource claim does not contain the requested resource.', durationMs: 0 });
  }
  const exp = numericClaim(jwt.claims, 'exp');
  if (exp !== undefined && exp + CLOCK_SKEW_SECONDS < expected.nowMs / 1000) {
    emit({ type: 'diagnostic', message: 'The ID-JAG is already expired by its exp claim; check the clocks.', durationMs: 0 });
  }
}
