import { untilAborted } from './abort.js';
import { Acquirer, type ResourceBinding } from './acquire.js';
import { discardBody, MAX_REPLAY_BODY_BYTES, prepareRequest, requestUrl, sendRequest } from './body.js';
import { bearerChallenge } from './challenge.js';
import { Discovery } from './discovery.js';
import { CrossAppAccessError } from './errors.js';
import { makeEmitter } from './events.js';
import type { FetchLike } from './http.js';
import { resolveOptions, type CrossAppAccessOptions, type ResolvedOptions } from './options.js';
import { ResourceRegistry } from './resources.js';
import { TokenStore, type AccessToken } from './tokens.js';
import { insecureUrlReason, isWithinResource, parseUrl } from './url-rules.js';

export type { FetchLike } from './http.js';

/**
 * What {@link withCrossAppAccess} returns: fetch's signature, so it fits wherever `fetch` or the MCP
 * SDK's `FetchLike` does.
 *
 * @example
 * ```ts
 * const authedFetch: CrossAppAccessFetch = withCrossAppAccess(fetch, options);
 * const response = await authedFetch(new Request('https://mcp.example.com/mcp', { method: 'POST', body }));
 * ```
 */
export type CrossAppAccessFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * An MCP SDK style fetch middleware: takes the next fetch, returns a wrapped one.
 *
 * @example
 * ```ts
 * const middleware: CrossAppAccessMiddleware = crossAppAccess(options);
 * const authedFetch = middleware(fetch);
 * ```
 */
export type CrossAppAccessMiddleware = (next: FetchLike) => CrossAppAccessFetch;

const TOKEN_CACHE_MAX_ENTRIES = 1000;

function wrap(next: FetchLike, options: ResolvedOptions): CrossAppAccessFetch {
  // Read through Date so fake timers (and tests) control expiry.
  const now = () => Date.now();
  const emit = makeEmitter(options.onEvent);
  const discovery = new Discovery(next, options.timeoutMs, emit, now);
  const registry = new ResourceRegistry(options, discovery);
  const store = new TokenStore(TOKEN_CACHE_MAX_ENTRIES, now);
  const acquirer = new Acquirer(options, next, discovery, emit, now, function purgeForNewUser() {
    // A wrapper serves one user at a time: a new user's ID token drops every cached token (C-2).
    store.clear();
    emit({ type: 'diagnostic', message: 'The ID token names a different user than before; all cached tokens were dropped. Use one wrapper per signed-in user.' });
  });

  /** The cached token, or one shared acquisition for the binding (PROTOCOL C-5). */
  function tokenFor(binding: ResourceBinding, signal: AbortSignal | null | undefined): Promise<AccessToken> {
    const cached = store.fresh(`${binding.key}\u0000${acquirer.user}`);
    if (cached) return Promise.resolve(cached);
    return untilAborted(store.obtain(binding.key, () => acquirer.acquire(binding)), signal);
  }

  /** 401 with our token: drop it if it is still the cached one, then get the current one (E-1, E-2). */
  function replacementFor(binding: ResourceBinding, rejected: AccessToken, signal: AbortSignal | null | undefined): Promise<AccessToken> {
    if (store.invalidate(`${binding.key}\u0000${acquirer.user}`, rejected)) {
      emit({ type: 'token_invalidated', resource: binding.resource, fingerprint: rejected.fingerprint, reason: 'unauthorized' });
    }
    return tokenFor(binding, signal);
  }

  /**
   * Only URLs inside the configured resource, or, without one, URLs a token may go to at all (not
   * plain http on a non-loopback host), are handled; everything else passes through (SEC-1, SEC-3).
   */
  function mayCarryToken(target: URL): boolean {
    if (options.resourceUrl) return isWithinResource(target, options.resourceUrl);
    return insecureUrlReason(target) === undefined;
  }

  /** Awaits `work`; if it fails, frees the 401 we were holding (E-4) before passing the error on. */
  async function releasing<T>(response: Response, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      await discardBody(response);
      throw error;
    }
  }

  async function authorizedFetch(input: string | URL | Request, init: RequestInit | undefined, target: URL): Promise<Response> {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const request = await prepareRequest(input, init, MAX_REPLAY_BODY_BYTES, signal);
    let binding = registry.find(target);
    if (!binding && options.resource !== undefined) binding = await untilAborted(registry.forConfiguredResource(), signal);

    if (!binding) {
      // Not known to be protected: send as is, and learn from a Bearer challenge (PROTOCOL D-1).
      const response = await sendRequest(next, request, undefined);
      const challenge = response.status === 401 ? bearerChallenge(response.headers) : undefined;
      if (!challenge) return response;
      const lookup = untilAborted(discovery.protectedResource(target, challenge.resourceMetadata, options.resource), signal).catch((error: unknown) => {
        // A server with no RFC 9728 metadata is not one of ours: hand its 401 back untouched.
        if (error instanceof CrossAppAccessError && error.code === 'metadata_not_found' && options.resource === undefined) return undefined;
        throw error;
      });
      const prm = await releasing(response, lookup);
      if (!prm) return response;
      if (!request.replayable) {
        // The body is gone: learn the resource for next time, and return the 401 as it came.
        await releasing(response, untilAborted(registry.fromMetadata(prm, challenge.scope), signal));
        return response;
      }
      await discardBody(response);
      binding = await untilAborted(registry.fromMetadata(prm, challenge.scope), signal);
      return sendRequest(next, request, (await tokenFor(binding, signal)).value);
    }

    const token = await tokenFor(binding, signal);
    const response = await sendRequest(next, request, token.value);
    if (response.status !== 401 || !request.replayable) return response;
    await discardBody(response);
    const replacement = await replacementFor(binding, token, signal);
    // Retried once; a second 401 goes back to the caller as it came (E-3).
    return sendRequest(next, request, replacement.value);
  }

  return async function crossAppAccessFetch(input, init) {
    const target = parseUrl(requestUrl(input));
    if (!target || !mayCarryToken(target)) {
      return next(input as string | URL, init);
    }
    const started = now();
    try {
      return await authorizedFetch(input, init, target);
    } catch (error) {
      if (error instanceof CrossAppAccessError) {
        emit({ type: 'failure', stage: error.stage, code: error.code, message: error.message, durationMs: now() - started });
      }
      throw error;
    }
  };
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
export function withCrossAppAccess(fetch: FetchLike, options: CrossAppAccessOptions): CrossAppAccessFetch {
  if (typeof fetch !== 'function') throw new TypeError('withCrossAppAccess: the first argument must be a fetch function.');
  return wrap(fetch, resolveOptions(options));
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
    return wrap(next, resolved);
  };
}
