import type { CrossAppAccessErrorCode, CrossAppAccessStage } from './errors.js';

/**
 * Redacted events for logs and metrics. They never carry a token, an ID token, an ID-JAG, an
 * assertion or a secret (PROTOCOL SEC-7); `fingerprint` is the first 8 hex digits of a token's SHA-256.
 *
 * @example
 * ```ts
 * const onEvent = (event: CrossAppAccessEvent) => {
 *   if (event.type === 'token_issued') metrics.histogram('xaa.acquire_ms', event.durationMs);
 *   if (event.type === 'failure') log.warn({ code: event.code, stage: event.stage }, event.message);
 * };
 * ```
 */
export type CrossAppAccessEvent =
  | {
      type: 'discovery';
      /** Which document: the MCP server's RFC 9728 metadata, or an RFC 8414 / OIDC document. */
      document: 'protected_resource' | 'authorization_server' | 'idp';
      url: string;
      durationMs: number;
    }
  | { type: 'token_exchange'; tokenEndpoint: string; audience: string; resource: string; scope?: string; durationMs: number }
  | { type: 'jwt_bearer'; tokenEndpoint: string; resource: string; scope?: string; durationMs: number }
  | {
      type: 'token_issued';
      issuer: string;
      resource: string;
      scope?: string;
      /** Seconds until expiry, as the authorization server said (or the default lifetime). */
      expiresIn: number;
      fingerprint: string;
      /** Wall time of the whole acquisition: ID token, exchange and grant. */
      durationMs: number;
    }
  | { type: 'token_invalidated'; resource: string; fingerprint: string; reason: 'unauthorized' }
  | { type: 'failure'; stage: CrossAppAccessStage; code: CrossAppAccessErrorCode; message: string; durationMs: number }
  | { type: 'diagnostic'; message: string };

/** Calls the listener and never lets it break a request. */
export function makeEmitter(listener: ((event: CrossAppAccessEvent) => void) | undefined): (event: CrossAppAccessEvent) => void {
  if (!listener) return () => undefined;
  return function emit(event) {
    try {
      listener(event);
    } catch {
      // A listener's own bug must not fail the request it observes.
    }
  };
}
