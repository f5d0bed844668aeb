import { OAuthResponseError, type CrossAppAccessErrorCode } from '../errors.js';

/** The authorization server's refusals of a workload's jwt-bearer request, each its own code (RFC 6749 §5.2; RFC 7523 §3.1). */
// A Map, not an object: a server's `error` of "constructor" must find nothing.
const REFUSALS: ReadonlyMap<string, { code: CrossAppAccessErrorCode; why: string }> = new Map([
  [
    'invalid_grant',
    {
      code: 'assertion_rejected',
      why: 'refused the workload assertion (invalid_grant): it may be expired, issued for another audience, or from an issuer or workload it does not trust',
    },
  ],
  ['invalid_scope', { code: 'invalid_scope', why: 'refused the scope asked for (invalid_scope)' }],
  ['unauthorized_client', { code: 'unauthorized_client', why: 'does not let this client use the jwt-bearer grant for this workload (unauthorized_client)' }],
]);

/**
 * A workload's jwt-bearer refusal as a typed error (`assertion_rejected`, `invalid_scope`,
 * `unauthorized_client`); undefined for any other error. None of them is retried, and no other
 * grant follows (SEP-1933): the same request would be refused again.
 */
export function workloadGrantRefused(error: unknown): OAuthResponseError | undefined {
  if (!(error instanceof OAuthResponseError) || error.stage !== 'jwt_bearer' || error.error === undefined) return undefined;
  const refusal = REFUSALS.get(error.error);
  if (!refusal) return undefined;
  const description = error.errorDescription ? `: ${error.errorDescription}` : '';
  return new OAuthResponseError(`The authorization server ${refusal.why}${description}. Not retried.`, {
    code: refusal.code,
    stage: 'jwt_bearer',
    status: error.status,
    error: error.error,
    errorDescription: error.errorDescription,
    errorUri: error.errorUri,
    cause: error,
  });
}
