import { authorize, type SessionResolver } from '../engine/authorize.js';
import { Engine, targetAt, type Target, type WarmToken } from '../engine/engine.js';
import type { CompatibleFetch, CrossAppAccessFetch, CrossAppAccessMiddleware, FetchLike } from '../fetch-types.js';
import { resolveOptions } from '../options/resolve.js';
import type { CrossAppAccessOptions, ResolvedWrapperOptions } from '../options/types.js';
import { parseUrl } from '../url-rules.js';
import { prepareRequest, requestUrl, type OutgoingRequest } from './body.js';
import { sendAuthorized } from './authorized-send.js';
import { credentialOf, type Credential } from '../engine/credential.js';
import { followsHere, isRedirect } from './redirects.js';
import { FetchExchange } from './fetch-exchange.js';

/**
 * The fetch adapter over an engine: requests that may carry a token go through the engine's
 * authorization (`authorize`); everything else passes through to `next` untouched. `sessionFor`
 * names the user of each request.
 */
export function fetchAdapter(engine: Engine, next: FetchLike, sessionFor: SessionResolver): CrossAppAccessFetch {
  // The last target parsed: MCP transports pass the same URL on every request.
  let lastTarget: Target | undefined;

  /**
   * Reads the caller's target once, as a string, and parses a copy of our own: a caller that changes
   * its `URL` object after the call cannot move the request (or its token) elsewhere.
   */
  function locate(input: string | URL | Request): Target | undefined {
    const href = typeof input === 'string' ? input : requestUrl(input);
    if (lastTarget?.href === href) return lastTarget;
    const url = parseUrl(href);
    if (!url) return undefined;
    lastTarget = targetAt(url, href);
    return lastTarget;
  }

  async function passOutside(input: string | URL | Request, init: RequestInit | undefined, target: Target): Promise<Response> {
    const response = await next(input as string | URL, init);
    const mistake = engine.noticeOutside(response.status, response.headers, target);
    if (!mistake) return response;
    await response.body?.cancel().catch(() => undefined);
    throw mistake;
  }

  /**
   * A request the warm path can send at once: its resource is known, its user has a usable token,
   * and its body needs no buffering (a `Request` or a stream body takes the engine's path).
   */
  function warmRequest(target: Target, input: string | URL | Request, init: RequestInit | undefined, sessionOfCall: SessionResolver): WarmRequest | undefined {
    if (typeof input !== 'string' && !(input instanceof URL)) return undefined;
    if (init?.body instanceof ReadableStream) return undefined;
    let warm: WarmToken | undefined;
    try {
      const session = sessionOfCall();
      warm = session && engine.warmToken(target, session);
    } catch {
      return undefined; // the engine's path fails and reports it
    }
    if (!warm) return undefined;
    const request = prepareRequest(target.url.href, input, init, engine.options.maxReplayBodyBytes, undefined);
    // Never a promise here: only a stream body is buffered, and those take the engine's path.
    if (request instanceof Promise) return undefined;
    return { binding: warm.binding, token: warm.token, request, credential: credentialOf(warm.token, engine.dpop) };
  }

  /** The engine's path: everything the warm path does not do, from the start or from the warm path's answer. */
  async function throughEngine(target: Target, input: string | URL | Request, init: RequestInit | undefined, sessionOfCall: SessionResolver, sent?: { warm: WarmRequest; response: Response }): Promise<Response> {
    const started = engine.now();
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    // The parsed URL is what was checked, so it is what is sent: a `next` that parses URLs its own way cannot disagree.
    const exchange = new FetchExchange(next, target.url.href, target.url, input, init, engine.options.maxReplayBodyBytes, signal);
    if (sent) exchange.continueFrom(sent.warm.request, sent.warm.credential, sent.response);
    let failure: unknown;
    try {
      return (await authorize(engine, target, sessionOfCall, signal, exchange, sent?.warm)).response;
    } catch (error) {
      failure = error;
      engine.reportFailure(error, started, sessionEmit(sessionOfCall) ?? engine.emit);
      // As fetch does when aborted: a stream body nobody has started reading is cancelled.
      const body = init?.body;
      if (body instanceof ReadableStream && !body.locked) body.cancel(error).catch(() => undefined);
      throw error;
    } finally {
      exchange.finish(failure);
    }
  }

  return function crossAppAccessFetch(input: string | URL | Request, init?: RequestInit) {
    try {
      const target = locate(input);
      if (!target || !engine.mayCarryToken(target)) {
        if (target && engine.options.resources.length > 0) return passOutside(input, init, target);
        return next(input as string | URL, init);
      }
      // The user of this call, read once, now: never the user current when a token is needed later.
      // The call's arguments go to a user function, a framework's context among them (Mastra passes it third).
      const sessionOfCall = resolveNow(sessionFor, input, init, arguments.length > 2 ? Array.prototype.slice.call(arguments, 2) : undefined);
      const warm = warmRequest(target, input, init, sessionOfCall);
      if (!warm) return throughEngine(target, input, init, sessionOfCall);
      // The warm path: one send with the stored token, no promise of ours in between; the engine's
      // loop only for an answer that needs it (a 401, a 403, a redirect to follow).
      return sendAuthorized(next, warm.request, warm.credential, followsHere(warm.request) ? 'manual' : undefined).then((response) =>
        needsEngine(response, warm.request) ? throughEngine(target, input, init, sessionOfCall, { warm, response }) : response,
      );
    } catch (error) {
      // As an async function would: a synchronous throw (a `next` that throws) becomes a rejection.
      return Promise.reject(error);
    }
  };
}

/** What the warm path sends: the request taken apart, with its binding and token. */
interface WarmRequest extends WarmToken {
  readonly request: OutgoingRequest;
  /** How the token goes with it: Bearer, or DPoP with a proof per request. */
  readonly credential: Credential;
}

/** An answer the engine must see: a 401 or 403 (re-acquisition, step-up), or a redirect to follow here. */
function needsEngine(response: Response, request: OutgoingRequest): boolean {
  const status = response.status;
  return status === 401 || status === 403 || (followsHere(request) && (status === 0 || isRedirect(status)));
}

/** Resolves the session now; the returned resolver answers (or throws) the same every time. */
const noSession: SessionResolver = () => undefined;

export function resolveNow(sessionFor: SessionResolver, input?: unknown, init?: unknown, rest?: readonly unknown[]): SessionResolver {
  try {
    const session = sessionFor(input, init, rest);
    // Sessions are reused per user: so is the resolver that answers one (no closure per request).
    return session ? (session.itself ??= () => session) : noSession;
  } catch (error) {
    return () => {
      throw error;
    };
  }
}

/** The emitter of the request's user, for its failure event; undefined when no user is known. */
export function sessionEmit(sessionFor: SessionResolver) {
  try {
    return sessionFor()?.emit;
  } catch {
    return undefined;
  }
}

/** A one-user engine and its fetch: what {@link withCrossAppAccess} and {@link crossAppAccess} make. */
function oneUserFetch(next: FetchLike, options: ResolvedWrapperOptions): CrossAppAccessFetch {
  // Metadata and token requests: through `oauthFetch` when given, so middlewares beneath this one
  // never see credentials; else through `next`, like every other request.
  const engine = new Engine(options, options.oauthFetch ?? next);
  const session = engine.session('', options.idToken, options.idTokenIsStatic);
  return fetchAdapter(engine, next, () => session);
}

/**
 * Wraps a fetch function so that requests to an MCP server carry an access token obtained with the
 * user's single sign-on: ID token → ID-JAG (RFC 8693 exchange at the IdP) → access token (RFC 7523
 * jwt-bearer at the MCP server's authorization server). Tokens are discovered, cached, attached only
 * to URLs inside the protected resource, and re-acquired once on a 401.
 *
 * Options are validated here, once; a bad option throws a {@link ConfigurationError}.
 *
 * @example
 * ```ts
 * import { withCrossAppAccess } from 'cross-app-access';
 * import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
 *
 * const authedFetch = withCrossAppAccess(fetch, {
 *   idToken: ({ reason }) => sso.getIdToken({ forceRefresh: reason !== 'initial' }),
 *   idp: { issuer: 'https://acme.okta.com', clientId: 'idp-client', clientSecret: process.env.IDP_SECRET },
 *   client: { clientId: 'mcp-client', clientSecret: process.env.MCP_SECRET },
 *   resource: 'https://mcp.example.com/mcp',
 * });
 * const transport = new StreamableHTTPClientTransport(new URL('https://mcp.example.com/mcp'), { fetch: authedFetch });
 * ```
 */
export function withCrossAppAccess(fetch: CompatibleFetch, options: CrossAppAccessOptions): CrossAppAccessFetch {
  if (typeof fetch !== 'function') throw new TypeError('withCrossAppAccess: the first argument must be a fetch function.');
  // Any WHATWG fetch takes the platform's RequestInit at run time, whatever its declarations say.
  return oneUserFetch(fetch as FetchLike, resolveOptions(options));
}

/**
 * The same as {@link withCrossAppAccess}, as a middleware `(next) => fetch`: it composes with the MCP
 * SDK's `applyMiddlewares` and other fetch middlewares. Options are validated when this is called.
 *
 * @example
 * ```ts
 * import { applyMiddlewares } from '@modelcontextprotocol/sdk/client/middleware.js';
 * import { crossAppAccess } from 'cross-app-access';
 *
 * const authedFetch = applyMiddlewares(withLogging(), crossAppAccess(options))(fetch);
 * ```
 */
export function crossAppAccess(options: CrossAppAccessOptions): CrossAppAccessMiddleware {
  const resolved = resolveOptions(options);
  return function crossAppAccessMiddleware(next) {
    if (typeof next !== 'function') throw new TypeError('crossAppAccess: next must be a fetch function.');
    return oneUserFetch(next as FetchLike, resolved);
  };
}
