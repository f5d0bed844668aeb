/** A JWT's header and claims, decoded without verification. */
export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return undefined;
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * Decodes a compact JWS (3 segments) without verifying it; undefined for anything else, including a
 * JWE (5 segments). Only used for advisory checks and cache keys: the servers verify signatures.
 */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header = decodeSegment(parts[0] ?? '');
    const claims = decodeSegment(parts[1] ?? '');
    return header && claims ? { header, claims } : undefined;
  } catch {
    return undefined;
  }
}

/** A string claim, or undefined. */
export function stringClaim(claims: Record<string, unknown>, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' ? value : undefined;
}

/** A numeric-date claim in seconds (RFC 7519 §2), or undefined. */
export function numericClaim(claims: Record<string, unknown>, name: string): number | undefined {
  const value = claims[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * A short, non-reversible fingerprint of a secret for events and messages (MCP Enterprise-Managed Authorization (stable)
 * §7.4.2, §7.5.4):
 * the first 8 hex digits of its SHA-256.
 */
export async function fingerprint(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest).subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
}
