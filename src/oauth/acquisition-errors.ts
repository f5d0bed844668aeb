import { CrossAppAccessError, OAuthResponseError, untrustedText } from '../errors.js';
import type { ClientAuthMethod, ClientCredentials } from './client-auth.js';

/** A step-up whose scopes were not all granted ends with a typed error, not a loop. */
export function requireScopes(granted: string | undefined, required: readonly string[], who: string, stage: 'token_exchange' | 'jwt_bearer'): void {
  if (granted === undefined || required.length === 0) return;
  const have = new Set(granted.split(' '));
  const missing = required.filter((s) => !have.has(s));
  if (missing.length > 0) {
    throw new CrossAppAccessError(`${who} did not grant the scope${missing.length > 1 ? 's' : ''} the MCP server asked for (${missing.join(' ')}); the user or client is not entitled to ${missing.length > 1 ? 'them' : 'it'}.`, {
      code: 'insufficient_scope',
      stage,
    });
  }
}

/** No answer, a redirect, or 404/405/410 at the AS token endpoint: it may have moved elsewhere. */
export function suggestsMovedEndpoint(error: unknown): boolean {
  if (!(error instanceof CrossAppAccessError) || error.stage !== 'jwt_bearer') return false;
  if (error.code === 'network_error' || error.code === 'unexpected_redirect') return true;
  return error.status === 404 || error.status === 405 || error.status === 410;
}

/**
 * An IdP `invalid_grant` means the subject token is expired, revoked or not for this client
 * (RFC 6749 §5.2; draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3.4.3).
 */
export function isRejectedSubject(error: unknown): error is OAuthResponseError {
  return error instanceof OAuthResponseError && error.stage === 'token_exchange' && error.error === 'invalid_grant';
}

/** The IdP wants a more recent (or stronger) user authentication (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3). */
export function isInsufficientAuthentication(error: unknown): error is OAuthResponseError {
  return error instanceof OAuthResponseError && error.stage === 'token_exchange' && error.error === 'insufficient_user_authentication';
}

/** The IdP still wants a fresher sign-in after the app was asked once: a typed error (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3). */
export function reauthenticationRequired(cause: OAuthResponseError): OAuthResponseError {
  const within = cause.maxAge === undefined ? '' : ` within the last ${cause.maxAge} s`;
  return new OAuthResponseError(
    `The IdP requires the user to have authenticated more recently${within} (insufficient_user_authentication${cause.errorDescription ? `: ${cause.errorDescription}` : ''}): the user must sign in again.`,
    {
      code: 'insufficient_user_authentication',
      stage: 'token_exchange',
      status: cause.status,
      error: cause.error,
      errorDescription: cause.errorDescription,
      errorUri: cause.errorUri,
      maxAge: cause.maxAge,
      cause,
    },
  );
}

/** The IdP still rejects the ID token after one refresh: the user must sign in (RFC 6749 §5.2). */
export function loginRequired(cause: OAuthResponseError): OAuthResponseError {
  return new OAuthResponseError(
    `The IdP rejected the ID token (invalid_grant${cause.errorDescription ? `: ${cause.errorDescription}` : ''}): the user must sign in again.`,
    { code: 'login_required', stage: 'token_exchange', status: cause.status, error: cause.error, errorDescription: cause.errorDescription, errorUri: cause.errorUri, cause },
  );
}

/**
 * The AS refused the client's authentication (`invalid_client`, RFC 6749 §5.2) with a method this
 * package chose on its own from `token_endpoint_auth_methods_supported`. That list is server-wide
 * (RFC 8414 §2), yet a server may hold each client to the one method it was registered with
 * (RFC 7591 §2 `token_endpoint_auth_method`), and its answer rarely says so. The message names the
 * method used and the option that selects another. Not retried with another method: see
 * Acquirer.grant. Undefined when the error is anything else or the method was configured.
 */
export function autoClientAuthRejected(
  error: unknown,
  used: ClientAuthMethod,
  listed: readonly string[] | undefined,
  credentials: ClientCredentials,
): OAuthResponseError | undefined {
  if (!(error instanceof OAuthResponseError) || error.stage !== 'jwt_bearer' || error.error !== 'invalid_client') return undefined;
  if (credentials.authMethod !== undefined) return undefined;
  const usable = (m: string) => (m === 'none' ? false : m === 'private_key_jwt' ? credentials.privateKey !== undefined : m === 'client_secret_basic' || m === 'client_secret_post' ? credentials.clientSecret !== undefined : false);
  const others = (listed ?? []).filter((m) => m !== used && usable(m));
  const chosen = `The client authentication method "${used}" was chosen automatically from the authorization server's metadata${listed ? ` (it lists ${untrustedText(listed.join(', '), 200) || 'none'})` : ''}`;
  const hint =
    used === 'none'
      ? `${chosen}, because no client.clientSecret or client.privateKey is configured. This server may require client authentication for this grant: configure the client's secret or key.`
      : others.length > 0
        ? `${chosen}. A server may allow each client only the method it was registered with: if this client is registered for another, select it with client.authMethod (${others.map((m) => `'${m}'`).join(' or ')}); otherwise check client.clientId and its secret or key.`
        : `${chosen}. Set client.authMethod to the method this client is registered with, or check client.clientId and its secret or key.`;
  const message = `${error.message.replace(/\.$/, '')}. ${hint}`;
  return new OAuthResponseError(message, {
    code: error.code,
    stage: error.stage,
    status: error.status,
    error: error.error,
    errorDescription: error.errorDescription,
    errorUri: error.errorUri,
    retryAfter: error.retryAfter,
    cause: error,
  });
}
