/**
 * Why the package is asking for a workload's platform JWT: `'initial'` for its first access token,
 * `'renewal'` when one expired (or is due for renewal, or a server refused it), and `'expired'` when
 * the JWT it was just given has passed its own `exp`: read a fresh one (a projected service-account
 * token file is rewritten by the kubelet; a metadata server mints a new one).
 *
 * @example
 * ```ts
 * const assertion = ({ reason }: { reason: WorkloadAssertionReason }) => (reason === 'expired' ? platform.fetchNewToken() : platform.cachedToken());
 * ```
 */
export type WorkloadAssertionReason = 'initial' | 'renewal' | 'expired';

/**
 * What a {@link WorkloadAssertionSource} is told: for which authorization server (`audience`, its
 * issuer: the platform token's `aud` must name it, RFC 7523 §3) and MCP resource, why, a signal that
 * aborts after `timeout`, and, in a {@link CrossAppAccess} engine, the user key it is for.
 *
 * @example
 * ```ts
 * const assertion = ({ audience, signal }: WorkloadAssertionContext) => metadataServer.identityToken({ audience, signal });
 * ```
 */
export interface WorkloadAssertionContext {
  /** The MCP server's authorization server's issuer: request the platform token for this audience. */
  audience: string;
  /** The MCP server's resource identifier (RFC 9728 `resource`) the access token is for. */
  resource: string;
  /** Why a token is needed: see {@link WorkloadAssertionReason}. */
  reason: WorkloadAssertionReason;
  /** Aborts when `timeout` runs out: pass it on to the platform call that gets the token. */
  signal: AbortSignal;
  /** The engine's user key the token is for ({@link CrossAppAccess}); absent for a one-user wrapper. */
  user?: string;
}

/**
 * Workload identity (SEP-1933): returns a JWT the workload's platform issued (a Kubernetes
 * service-account token, a SPIFFE JWT-SVID, a cloud metadata server's identity token), sent as the
 * RFC 7523 jwt-bearer `assertion` to the MCP server's authorization server, in place of the ID-JAG
 * of the user flow (no IdP, no token exchange). Called only when a new access token is needed.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * // A Kubernetes projected service-account token whose audience is the authorization server.
 * const assertion: WorkloadAssertionSource = () => readFile('/var/run/secrets/tokens/mcp-token', 'utf8');
 * ```
 */
export type WorkloadAssertionSource = (context: WorkloadAssertionContext) => string | Promise<string>;
