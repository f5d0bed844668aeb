import { withoutAuthorization, type OutgoingRequest } from './body.js';
import { sendAuthorized } from './authorized-send.js';
import type { Credential } from '../engine/credential.js';
import { CrossAppAccessError } from '../errors.js';
import { discardBody, type FetchLike } from '../oauth/http.js';
import { describeUrl, parseUrl } from '../url-rules.js';
import { DEFAULTS } from '../options/defaults.js';

// Fetch standard, "HTTP-redirect fetch": at most 20 redirects.
const MAX_REDIRECTS = DEFAULTS.maxRedirects;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Fetch standard, "request-body-header name": dropped when a redirect turns the request into a GET.
const BODY_HEADERS = ['content-encoding', 'content-language', 'content-location', 'content-type'];

/** The answer to a request sent with our token, and whether it came from inside the resource. */
export interface TokenedAnswer {
  readonly response: Response;
  /** False when a redirect led out of the resource: the answer is not the resource's to give. */
  readonly fromResource: boolean;
}

/**
 * Sends a request that carries our access token, so that the token never follows a redirect out of
 * the resource (RFC 6750 §5.3: tokens go only to the resource they were issued for).
 *
 * - `redirect: 'manual'` and `'error'` keep their meaning: fetch hands back the 3xx, or fails,
 *   without following it, so the token cannot follow either.
 * - `'follow'` (the default): the request goes out with `redirect: 'manual'` and redirects are
 *   followed here, with the token while the next URL is inside the resource (`inResource`), and
 *   without it (and without any `Authorization`) from the first URL outside on, 20 redirects in all
 *   as fetch allows. A runtime that hides redirects from `'manual'` (an opaque redirect, as browsers
 *   do) gets a typed `unexpected_redirect` error: the target is unknown, so it is not followed.
 */
export async function sendWithToken(
  next: FetchLike,
  request: OutgoingRequest,
  token: Credential,
  inResource: (url: URL) => boolean,
  /** The answer to this request sent already (by the warm path): followed from there. */
  first?: Response,
): Promise<TokenedAnswer> {
  if (!followsHere(request)) return { response: first ?? (await sendAuthorized(next, request, token)), fromResource: true };
  let current = request;
  let carried: Credential | undefined = token;
  let response = first ?? (await sendAuthorized(next, current, carried, 'manual'));
  for (let hops = 0; ; hops++) {
    // An opaque redirect has status 0 (Fetch standard, "opaque-redirect filtered response").
    if (response.status === 0 && response.type === 'opaqueredirect') {
      throw new CrossAppAccessError(
        `The MCP server answered ${describeTarget(current.url)} with a redirect this runtime does not reveal; it was not followed, so the access token could not go elsewhere.`,
        { code: 'unexpected_redirect', stage: 'request' },
      );
    }
    const location = isRedirect(response.status) ? response.headers.get('location') : null;
    if (location === null) return { response, fromResource: carried !== undefined };
    await discardBody(response);
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed: redirect count exceeded');
    const target = parseUrl(new URL(location, current.url).href);
    if (!target || (target.protocol !== 'https:' && target.protocol !== 'http:')) {
      throw new TypeError(`fetch failed: the redirect location is not an http(s) URL`);
    }
    current = redirected(current, response.status, target);
    if (carried !== undefined && !inResource(target)) {
      // Out of the resource: no token and no Authorization at all from here on, even if a later
      // redirect leads back in.
      carried = undefined;
      current = { ...current, headers: withoutAuthorization(current.headers) };
    }
    // Each hop inside the resource with a new DPoP proof for its own URL (RFC 9449 §4.2).
    response = await sendAuthorized(next, current, carried, 'manual');
  }
}

/** True when redirects of `request` are followed here (its mode is `'follow'`): it is then sent with `'manual'`. */
export function followsHere(request: OutgoingRequest): boolean {
  return (request.init.redirect ?? 'follow') === 'follow';
}

export function isRedirect(status: number): boolean {
  return status >= 301 && status <= 308 && REDIRECT_STATUSES.has(status);
}

/**
 * The request a redirect asks for (Fetch standard, "HTTP-redirect fetch" steps 11 to 13): 303, and
 * 301/302 after a POST, become a GET without a body; 307 and 308 repeat method and body.
 */
function redirected(request: OutgoingRequest, status: number, target: URL): OutgoingRequest {
  const method = (request.init.method ?? 'GET').toUpperCase();
  const toGet = (status === 303 && method !== 'GET' && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST');
  if (toGet) {
    return { url: target.href, init: { ...request.init, method: 'GET' }, headers: withoutHeaders(request.headers, BODY_HEADERS), body: null, replayable: true };
  }
  if (request.body !== null && request.body !== undefined && !request.replayable) {
    // As fetch does: a stream body that was sent once cannot be sent again.
    throw new TypeError('fetch failed: a redirect asked to send a stream body again');
  }
  return { ...request, url: target.href };
}

function withoutHeaders(headers: HeadersInit | undefined, names: readonly string[]): HeadersInit | undefined {
  if (headers === undefined) return undefined;
  const copy = new Headers(headers);
  for (const name of names) copy.delete(name);
  return copy;
}

function describeTarget(url: string): string {
  const parsed = parseUrl(url);
  return parsed ? describeUrl(parsed) : 'the request';
}

/**
 * True when `response` is not the answer of `requested` itself: fetch followed a redirect (or a
 * lower fetch says the final URL differs). Such an answer says nothing about `requested`.
 */
export function redirectedFrom(response: Response, requested: URL): boolean {
  if (response.redirected) return true;
  if (response.url === '') return false;
  // A response's URL has no fragment (Fetch standard, "response URL"), not even an empty `#`.
  const expected = new URL(requested.href);
  expected.hash = '';
  return response.url !== expected.href;
}
