import { untilAborted } from '../abort.js';
import { Acquirer, type ResourceBinding } from '../oauth/acquire.js';
import { discardBody, prepareProbe, prepareRequest, requestUrl, sendRequest, type OutgoingRequest } from './body.js';
import { redirectedFrom, sendWithToken } from './redirects.js';
import { bearerChallenge } from '../oauth/challenge.js';
import { Discovery } from '../oauth/discovery.js';
import { CrossAppAccessError } from '../errors.js';
import { makeEmitter } from '../events.js';
import type { CompatibleFetch, CrossAppAccessFetch, CrossAppAccessMiddleware } from '../fetch-types.js';
import type { FetchLike } from '../oauth/http.js';
import { resolveOptions, type CrossAppAccessOptions, type ResolvedOptions } from '../options.js';
import { ResourceRegistry } from '../engine/resources.js';
import { TokenStore, type AccessToken } from '../engine/tokens.js';
import { describeUrl, inScope, insecureUrlReason, parseUrl, type ResourceScope } from '../url-rules.js';

/** A request's target, read once (see `locate`). */
interface Target {
  readonly href: string;
  readonly url: URL;
  readonly origin: string;
  readonly path: string;
}

// A request may be authorized again at most twice (after a 401, or a step-up): 3 attempts in all (a limit
// the MCP conformance suite checks).
const MAX_REAUTHORIZATIONS = 2;
// After a failed background renewal, the still-valid token is served and renewal waits this long.
const RENEWAL_RETRY_MS = 5_000;

function wrap(next: FetchLike, options: ResolvedOptions): CrossAppAccessFetch {
  const { now } = options;
  const emit = makeEmitter(options.onEvent);
  // Metadata and token requests: through `oauthFetch` when given, so middlewares beneath this one
  // never see credentials; else through `next`, like every other request.
  const oauthFetch = options.oauthFetch ?? next;
  const discovery = new Discovery(oauthFetch, options.timeoutMs, emit, now, options.retry);
  const registry = new ResourceRegistry(options, discovery);
  const store = new TokenStore(options.maxCachedTokens, now);
  const acquirer = new Acquirer(options, oauthFetch, discovery, emit, now, function purgeForNewUser() {
    // A wrapper serves one user at a time: a new user's ID token drops every cached token.
    store.clear();
    emit({ type: 'diagnostic', message: 'The ID token names a different user than before; all cached tokens were dropped. Use one wrapper per signed-in user.', durationMs: 0 });
  });
  /** Binding key → epoch ms before which a failed background renewal is not tried again. */
  const renewalPausedUntil = new Map<string, number>();

  // Token cache key per binding and user, built once rather than on every request.
  const tokenKeys = new WeakMap<ResourceBinding, { user: string; key: string }>();
  function tokenKey(binding: ResourceBinding): string {
    const known = tokenKeys.get(binding);
    if (known && known.user === acquirer.user) return known.key;
    const key = `${binding.key}\u0000${acquirer.user}`;
    tokenKeys.set(binding, { user: acquirer.user, key });
    return key;
  }

  function reportFailure(error: unknown, started: number): void {
    if (error instanceof CrossAppAccessError) {
      emit({ type: 'failure', stage: error.stage, code: error.code, message: error.message, durationMs: now() - started });
    }
  }

  /**
   * One shared acquisition per binding; this caller may stop waiting, it goes on.
   * While this caller waits, the acquisition's retry waits hold the process; once it leaves, not.
   */
  function acquire(binding: ResourceBinding, signal: AbortSignal | null | undefined, requiredScopes?: readonly string[]): Promise<AccessToken> {
    const flight = store.obtain(binding.key, (liveness) => acquirer.acquire(binding, { requiredScopes, liveness }));
    const release = flight.liveness.hold();
    const waiting = untilAborted(flight.token, signal);
    waiting.then(release, release);
    return waiting;
  }

  /** Renews ahead of expiry while the current token keeps being served. */
  function renewInBackground(binding: ResourceBinding): void {
    if (store.inFlight(binding.key) || (renewalPausedUntil.get(binding.key) ?? 0) > now()) return;
    const started = now();
    store.obtain(binding.key, (liveness) => acquirer.acquire(binding, { background: true, liveness })).token.then(
      () => renewalPausedUntil.delete(binding.key),
      (error: unknown) => {
        renewalPausedUntil.set(binding.key, now() + RENEWAL_RETRY_MS);
        reportFailure(error, started);
      },
    );
  }

  /** The warm path: a usable cached token, with no I/O and no promise; else an acquisition. */
  function tokenFor(binding: ResourceBinding, signal: AbortSignal | null | undefined): AccessToken | Promise<AccessToken> {
    const token = store.usable(tokenKey(binding));
    if (!token) return acquire(binding, signal);
    if (now() >= token.renewAt) renewInBackground(binding);
    return token;
  }

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
    lastTarget = { href, url, origin: url.origin, path: url.pathname };
    return lastTarget;
  }

  /** 401 with our token: drop it if it is still the cached one (generation check). */
  function dropRejected(binding: ResourceBinding, rejected: AccessToken): void {
    if (store.invalidate(tokenKey(binding), rejected)) {
      emit({ type: 'token_invalidated', resource: binding.resource, fingerprint: rejected.fingerprint, reason: 'unauthorized', durationMs: now() - rejected.receivedAt });
    }
  }

  /**
   * 403 insufficient_scope: a token for previous ∪ challenged scopes, all of which must be granted (MCP
   * authorization spec, "Step-Up Authorization Flow").
   */
  async function steppedUpToken(stepped: ResourceBinding, challenged: string, signal: AbortSignal | null | undefined): Promise<AccessToken> {
    const started = now();
    const wanted = new Set(challenged.split(' '));
    const token = store.usable(tokenKey(stepped)) ?? (await acquire(stepped, signal, stepped.scopes?.filter((s) => wanted.has(s))));
    emit({ type: 'step_up', resource: stepped.resource, challenged, scope: stepped.scopes?.join(' ') ?? '', durationMs: now() - started });
    return token;
  }

  /**
   * Only URLs inside the configured resource, or, without one, URLs a token may go to at all (not
   * plain http on a non-loopback host), are handled; everything else passes through (RFC 8707 §2).
   */
  function mayCarryToken(target: { url: URL; origin: string; path: string }): boolean {
    if (options.resourceScope) return inScope(target.origin, target.path, options.resourceScope);
    return insecureUrlReason(target.url) === undefined;
  }

  const outsideReported = new Set<string>();
  /**
   * A request outside the configured resource answered 401 with a Bearer challenge: the most common
   * misconfiguration (`localhost` against `127.0.0.1`, a path outside the resource). No token was
   * sent, rightly; a diagnostic says why, once per URL.
   */
  function noticeOutside(response: Response, target: Target): Response {
    if (response.status !== 401 || outsideReported.size >= 100) return response;
    const where = describeUrl(target.url);
    if (outsideReported.has(where) || !bearerChallenge(response.headers)) return response;
    outsideReported.add(where);
    const scope = options.resourceScope as ResourceScope;
    const why = target.origin !== scope.origin ? `its origin is not ${scope.origin}` : `its path is not at or below ${scope.prefix || '/'}`;
    emit({ type: 'diagnostic', message: `A request to ${where} was answered 401 with a Bearer challenge, but it is outside the configured resource ${options.resource} (${why}), so no token was sent. Set resource exactly as the client calls the server.`, durationMs: 0 });
    return response;
  }

  /** Awaits `work`; if it fails, frees the 401 we were holding before passing the error on. */
  async function releasing<T>(response: Response, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      await discardBody(response);
      throw error;
    }
  }

  /**
   * An unauthenticated request answered 401: learn the resource from its Bearer challenge
   * (RFC 9728 §5.1). Returns the binding to retry with, or undefined to hand the response back as it came.
   */
  async function learnFrom(response: Response, target: URL, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    const challenge = response.status === 401 ? bearerChallenge(response.headers) : undefined;
    if (!challenge) return undefined;
    if (redirectedFrom(response, target)) {
      emit({ type: 'diagnostic', message: `A request to ${describeUrl(target)} was redirected and answered 401 with a Bearer challenge elsewhere; nothing was learned from it and the 401 was returned as it came.`, durationMs: 0 });
      return undefined;
    }
    const learning = (async () => {
      const prm = await untilAborted(discovery.protectedResource(target, challenge.resourceMetadata, options.resource), signal);
      // It is one of ours: the IdP's metadata can be fetched alongside the authorization server's.
      acquirer.prefetchIdp();
      return untilAborted(registry.fromMetadata(prm, challenge.scope), signal);
    })();
    return releasing(response, learning.catch((error: unknown) => {
      // Without `resource`, a server we cannot learn is not known to be ours: its 401 goes back as it
      // came, and the reason is reported (a configured resource's failures are the caller's to see).
      if (options.resource !== undefined || signal?.aborted || !(error instanceof CrossAppAccessError) || error.stage !== 'discovery') throw error;
      emit({ type: 'diagnostic', message: `A request to ${describeUrl(target)} was answered 401 with a Bearer challenge, but its authorization could not be discovered (${error.code}: ${error.message}); the 401 was returned as it came.`, durationMs: 0 });
      return undefined;
    }));
  }

  /**
   * A request to a URL not known to be protected goes out at once, as it is (a stream body is not
   * held back); a Bearer challenge teaches the resource, and the request is replayed with a token
   * if its body could be kept.
   */
  async function probe(
    href: string,
    input: string | URL | Request,
    init: RequestInit | undefined,
    target: URL,
    signal: AbortSignal | null | undefined,
  ): Promise<{ response: Response } | { binding: ResourceBinding; request: OutgoingRequest }> {
    const probing = prepareProbe(href, input, init, options.maxReplayBodyBytes, signal);
    let learned: ResourceBinding | undefined;
    let response: Response;
    try {
      response = await sendRequest(next, probing.request, undefined);
      // Only the server that was asked may say what protects it: a challenge that arrived through a
      // redirect comes from wherever the redirect pointed, and is handed back unlearned (RFC 9728 §3.3, §7.3).
      learned = await learnFrom(response, target, signal);
    } finally {
      if (!learned) probing.release();
    }
    if (!learned) return { response };
    const request = await releasing(response, untilAborted(probing.replay(), signal));
    // Past the cap the body is gone: the resource is learned for next time; the 401 goes back.
    if (!request) return { response };
    await discardBody(response);
    return { binding: learned, request };
  }

  /**
   * The resource a 401's challenge points to when it is not `current`'s (discovered again); undefined
   * when it is the same, or when its metadata cannot be used (then the usual re-acquisition runs).
   */
  async function elsewhere(response: Response, current: ResourceBinding, target: URL, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    const pointer = bearerChallenge(response.headers)?.resourceMetadata;
    const url = pointer === undefined ? undefined : parseUrl(pointer);
    if (!url || url.href === current.metadataUrl) return undefined;
    try {
      const prm = await untilAborted(discovery.protectedResource(target, url.href, options.resource), signal);
      if (prm.resource === current.resource) return undefined;
      return await untilAborted(registry.fromMetadata(prm, bearerChallenge(response.headers)?.scope), signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      return undefined;
    }
  }

  async function authorizedFetch(
    input: string | URL | Request,
    init: RequestInit | undefined,
    { href, url: target, origin, path }: Target,
  ): Promise<Response> {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    let binding = registry.find(origin, path);
    if (!binding && options.resource !== undefined) {
      acquirer.prefetchIdp();
      binding = await untilAborted(registry.forConfiguredResource(), signal);
    }

    let probed = false;
    let request: OutgoingRequest;
    if (binding) {
      const prepared = prepareRequest(href, input, init, options.maxReplayBodyBytes, signal);
      request = prepared instanceof Promise ? await prepared : prepared;
    } else {
      const result = await probe(href, input, init, target, signal);
      if ('response' in result) return result.response;
      ({ binding, request } = result);
      probed = true;
    }

    try {
      return await authorizedLoop(request, binding, target, signal, probed);
    } catch (error) {
      // A buffered-and-forwarded stream body that was never sent still holds the caller's stream.
      const body = request.body;
      if (body instanceof ReadableStream && !body.locked) body.cancel(error).catch(() => undefined);
      throw error;
    }
  }

  /** Sends with a token; on 401 or 403, re-acquires or steps up within the per-request budget. */
  async function authorizedLoop(
    request: OutgoingRequest,
    binding: ResourceBinding,
    target: URL,
    signal: AbortSignal | null | undefined,
    probed: boolean,
  ): Promise<Response> {
    // Per request: one re-acquisition after a 401 (the probe's 401 already led to one), and at
    // most maxStepUps step-ups, 3 authorization attempts in all; never a loop.
    let reacquired = probed;
    let current: ResourceBinding = binding;
    let token = await tokenFor(current, signal);
    let stepUps = 0;
    while (true) {
      const { response, fromResource } = await sendWithToken(next, request, token.value, (url) => inScope(url.origin, url.pathname, current.scope));
      // An answer from outside the resource (a redirect led there) is not the resource's: as it came.
      if (!fromResource) return response;
      if (response.status === 401) {
        // One re-acquisition per request, and 3 authorization attempts in all.
        if (!request.replayable || reacquired || stepUps >= MAX_REAUTHORIZATIONS) {
          // A token cached before this request is dropped; one this request just got stays,
          // so a server rejecting every token costs one acquisition per request, not two.
          if (!reacquired) dropRejected(current, token);
          return response;
        }
        reacquired = true;
        // A challenge naming other metadata: the URL belongs to another resource now. The
        // token is still good for `current` unless the move made `current` stale.
        const moved = await elsewhere(response, current, target, signal);
        if (!moved || registry.moved(current, moved)) dropRejected(current, token);
        await discardBody(response);
        current = moved ?? current;
        token = await tokenFor(current, signal);
        continue;
      }
      if (response.status === 403 && request.replayable && stepUps < options.maxStepUps && stepUps + (reacquired ? 1 : 0) < MAX_REAUTHORIZATIONS) {
        const challenge = bearerChallenge(response.headers);
        const stepped = challenge?.error === 'insufficient_scope' && challenge.scope ? registry.stepUp(current, challenge.scope, token.scope) : undefined;
        if (!stepped || !challenge?.scope) return response;
        stepUps++;
        await discardBody(response);
        token = await steppedUpToken(stepped, challenge.scope, signal);
        registry.adopt(stepped);
        current = stepped;
        continue;
      }
      // Anything else, or a budget spent: the server's answer goes back as it came.
      return response;
    }
  }

  return async function crossAppAccessFetch(input, init) {
    const target = locate(input);
    if (!target || !mayCarryToken(target)) {
      const passed = next(input as string | URL, init);
      return target && options.resourceScope ? passed.then((response) => noticeOutside(response, target)) : passed;
    }
    const started = now();
    try {
      return await authorizedFetch(input, init, target);
    } catch (error) {
      reportFailure(error, started);
      // As fetch does when aborted: a stream body nobody has started reading is cancelled.
      const body = init?.body;
      if (body instanceof ReadableStream && !body.locked) body.cancel(error).catch(() => undefined);
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
export function withCrossAppAccess(fetch: CompatibleFetch, options: CrossAppAccessOptions): CrossAppAccessFetch {
  if (typeof fetch !== 'function') throw new TypeError('withCrossAppAccess: the first argument must be a fetch function.');
  // Any WHATWG fetch takes the platform's RequestInit at run time, whatever its declarations say.
  return wrap(fetch as FetchLike, resolveOptions(options));
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
    return wrap(next as FetchLike, resolved);
  };
}
