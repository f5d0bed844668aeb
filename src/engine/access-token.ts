import { renewalWindowMs, type AccessToken } from './tokens.js';
import type { ResolvedOptions } from '../options/types.js';
import { decodeJwt, fingerprint, numericClaim } from '../oauth/jwt.js';
import { DEFAULTS } from '../options/defaults.js';

// A server's expires_in beyond a day is clamped: renewal re-checks IdP policy (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.3).
const MAX_LIFETIME_SECONDS = DEFAULTS.maxTokenLifetimeSeconds;

/**
 * The access token as it is kept, from a grant response: its lifetime from `expires_in` (clamped to
 * a day), else the JWT's `exp`, else the configured default; renewal due ahead of expiry.
 */
export async function toAccessToken(
  value: string,
  expiresIn: number | undefined,
  scope: string | undefined,
  options: Pick<ResolvedOptions, 'defaultTokenLifetimeMs' | 'renewBeforeMs'>,
  now: () => number,
  /** For a DPoP-bound token (RFC 9449 §5): the thumbprint of its key. */
  dpopJkt?: string,
): Promise<AccessToken> {
  const receivedAt = now();
  // No expires_in: a decodable JWT exp is advisory, else a default lifetime.
  let lifetimeMs = expiresIn === undefined ? options.defaultTokenLifetimeMs : expiresIn * 1000;
  if (expiresIn === undefined) {
    const jwt = decodeJwt(value);
    const exp = jwt && numericClaim(jwt.claims, 'exp');
    if (exp !== undefined && exp * 1000 > receivedAt) lifetimeMs = exp * 1000 - receivedAt;
  }
  lifetimeMs = Math.min(lifetimeMs, MAX_LIFETIME_SECONDS * 1000);
  return {
    value,
    receivedAt,
    expiresAt: receivedAt + lifetimeMs,
    renewAt: receivedAt + lifetimeMs - renewalWindowMs(lifetimeMs, options.renewBeforeMs),
    scope,
    fingerprint: await fingerprint(value),
    ...(dpopJkt === undefined ? {} : { tokenType: 'DPoP' as const, jkt: dpopJkt }),
  };
}
