/**
 * Well-known metadata locations for an issuer (RFC 8414 §3.1, OpenID Connect Discovery §4).
 */

/**
 * Pathnames at which metadata named `name` (e.g. `oauth-authorization-server`) is found for an
 * issuer whose path is `issuerPath` (`''` or `/tenant-1`).
 * - RFC 8414 §3.1 inserts the well-known segment before the issuer path:
 *   `/.well-known/<name>/tenant-1`.
 * - OpenID Connect Discovery §4 appends it (`/tenant-1/.well-known/openid-configuration`); only when `oidcAppend`.
 */
export function wellKnownPaths(issuerPath: string, name: string, oidcAppend = false): string[] {
  if (issuerPath === '') return [`/.well-known/${name}`];
  const out = [`/.well-known/${name}${issuerPath}`];
  if (oidcAppend) out.push(`${issuerPath}/.well-known/${name}`);
  return out;
}
