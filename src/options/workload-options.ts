import { ConfigurationError } from '../errors.js';

/**
 * Exactly one way to say who tokens are for: the user flow (`idToken` and `idp`; an engine's
 * sessions bring the `idToken`) or workload identity (`assertion`, SEP-1933). Checked before the
 * schema, so a mix names the options that clash rather than one of them as malformed.
 */
export function requireOneSubject(input: object, kind: 'wrapper' | 'engine'): void {
  // Not an options object at all: the schema says so.
  if (Array.isArray(input)) return;
  const given = (key: string) => (input as Record<string, unknown>)[key] !== undefined;
  if (given('assertion')) {
    const clashing = ['idToken', 'idp', 'subjectTokenType'].filter(given);
    if (clashing.length > 0) {
      throw new ConfigurationError(
        'assertion',
        `replaces ${clashing.join(' and ')}: give assertion (workload identity: the platform's JWT goes straight to the MCP server's authorization server) or ${kind === 'wrapper' ? 'idToken and idp' : 'idp'} (a user's ID token, exchanged at the IdP), not both`,
      );
    }
    return;
  }
  if (kind === 'wrapper' && !given('idToken')) {
    throw new ConfigurationError('idToken', "is required (expected the user's ID token or a function returning it), or assertion for workload identity");
  }
  if (!given('idp')) {
    throw new ConfigurationError('idp', 'is required (expected an IdP ({ issuer or tokenEndpoint, clientId, … }) or a list of them), or assertion for workload identity');
  }
}

/** The ID-token source of a workload wrapper: never asked (its acquisitions read `assertion`). */
export function noIdToken(): never {
  throw new Error('cross-app-access: internal error: an ID token was asked for under workload identity');
}
