import { CrossAppAccessError, type CrossAppAccessStage } from './errors.js';

/**
 * Exactly `localhost`, 127.0.0.0/8 and [::1] (MCP authorization spec, "Communication Security");
 * `*.localhost` goes through DNS.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost') return true;
  if (host === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Why a URL may not carry secrets, or undefined when it may (https except on loopback; RFC 6749 §2.3.1). */
export function insecureUrlReason(url: URL): string | undefined {
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  if (url.protocol === 'http:') return 'must use https: (plain http: is allowed only for loopback hosts)';
  return `must be an https: URL, not ${url.protocol}`;
}

/** Parses an absolute URL, or returns undefined. */
export function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * Parses a URL that tokens, credentials or metadata requests will go to, and requires https except on loopback.
 * `what` names the URL for the message (e.g. "the IdP token endpoint").
 */
export function requireSecureUrl(value: string, what: string, stage: CrossAppAccessStage): URL {
  const url = parseUrl(value);
  if (!url) {
    throw new CrossAppAccessError(`${what} is not an absolute URL.`, { code: 'invalid_metadata', stage });
  }
  const reason = insecureUrlReason(url);
  if (reason) {
    throw new CrossAppAccessError(`${what} (${url.origin}) ${reason}.`, { code: 'insecure_url', stage });
  }
  return url;
}

/** A resource's path without its trailing slash, for prefix matching at a `/` boundary. */
function pathPrefix(url: URL): string {
  return url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
}

/**
 * The URLs a resource covers (its boundary, not an OAuth scope): its origin and path prefix, computed
 * once so the per-request check allocates nothing (RFC 8707 §2; RFC 9728 §3.3).
 */
export interface ResourceBoundary {
  readonly origin: string;
  readonly prefix: string;
  readonly prefixSlash: string;
}

export function resourceBoundary(resource: URL): ResourceBoundary {
  const prefix = pathPrefix(resource);
  return { origin: resource.origin, prefix, prefixSlash: `${prefix}/` };
}

/** {@link isWithinResource} with the target's origin and path already read. */
export function isInside(origin: string, path: string, boundary: ResourceBoundary): boolean {
  if (origin !== boundary.origin) return false;
  return boundary.prefix === '' || path === boundary.prefix || path.startsWith(boundary.prefixSlash);
}

/**
 * True when `target` is inside `resource`: same origin, and a path equal to or below the resource's
 * path at a `/` boundary (`/api` covers `/api/mcp`, not `/api2`) (RFC 8707 §2; RFC 9728 §3.3, relaxed to a
 * path prefix as the MCP SDKs do).
 */
export function isWithinResource(target: URL, resource: URL): boolean {
  return isInside(target.origin, target.pathname, resourceBoundary(resource));
}

/**
 * `target` as it would be inside `boundary` but for its loopback host's spelling (`localhost` against
 * `127.0.0.1` or `[::1]`, same scheme, port and path), spelled as `boundary` spells it; else undefined.
 * Such a URL names the same server as the resource, but not the same resource (RFC 8707 §2 compares
 * URIs, not addresses), so it never gets a token: the caller is told how to spell it.
 */
export function respelledLoopback(target: URL, boundary: ResourceBoundary): URL | undefined {
  const resource = parseUrl(boundary.origin);
  if (!resource || target.origin === boundary.origin || !isLoopbackHost(target.hostname) || !isLoopbackHost(resource.hostname)) return undefined;
  if (target.protocol !== resource.protocol || target.port !== resource.port) return undefined;
  const respelled = new URL(target.href);
  respelled.hostname = resource.hostname;
  return isInside(respelled.origin, respelled.pathname, boundary) ? respelled : undefined;
}

/** A URL for messages and events: origin and path, never the query or fragment (they may carry a caller's secrets). */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * A URL string for messages and events: without its query or fragment, which may carry a caller's
 * secrets (an `?api_key=`); `?…` marks that there was a query. Unparsable text is reported as is.
 */
export function reportedUrl(url: string): string {
  const parsed = parseUrl(url);
  if (!parsed) return url;
  return `${describeUrl(parsed)}${parsed.search ? '?…' : ''}`;
}
