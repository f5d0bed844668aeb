import type { StoredToken } from '../stores/token-store.js';
import { DEFAULTS } from '../options/defaults.js';

/** A cached access token. ID-JAGs and ID tokens are never cached (MCP Enterprise-Managed Authorization §7.4.2). */
export type AccessToken = StoredToken;

/**
 * Renew max(60 s, 10 % of the lifetime) before expiry, or the configured window, but never more
 * than half the lifetime before (a short-lived token would otherwise always be renewing).
 */
export function renewalWindowMs(lifetimeMs: number, configuredMs: number | undefined): number {
  return Math.min(configuredMs ?? Math.max(DEFAULTS.renewBeforeFloorMs, lifetimeMs / 10), lifetimeMs / 2);
}
