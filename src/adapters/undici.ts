import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import type { SessionResolver } from '../engine/authorize.js';
import type { Target, WarmToken } from '../engine/engine.js';
import { ConfigurationError } from '../errors.js';
import type { FetchLike } from '../fetch-types.js';
import type { CrossAppAccessEngineOptions } from '../options/types.js';
import type { crossAppAccessErrorOf } from '../errors.js';
import { parseUrl } from '../url-rules.js';
import type { CrossAppAccess } from '../cross-app-access.js';
import { Engine, targetAt } from '../engine/engine.js';
import { engineBehind } from '../engine/handles.js';
import type { FetchSession } from '../engine/sessions.js';
import { resolveEngineOptions } from '../options/resolve.js';
import { headerReader, isReplayableAsIs } from './undici-body.js';
import { Route, SignedRequest } from './undici-request.js';
import { RequestUsers } from './undici-users.js';
import { isComposedCoreHandler } from './undici-core-api.js';
import { OutsideRelay, WarmRelay } from './undici-relays.js';

/**
 * Who the requests through a {@link crossAppAccessInterceptor} act for: the same as
 * {@link CrossAppAccess.fetch}'s session, a fixed user key or a function called when each request is
 * dispatched (e.g. reading AsyncLocalStorage), and where that user's ID tokens come from.
 *
 * @example
 * ```ts
 * const session: InterceptorSession = { user: () => requestContext.getStore()?.userId, idToken: ({ user }) => sessions.idTokenFor(user!) };
 * ```
 */
export type InterceptorSession = FetchSession;

/**
 * The metadata and token requests of an engine this interceptor was handed, while they run: they go
 * through the global fetch like every other request of the process (its proxy, its TLS settings), and
 * this interceptor, installed as the global dispatcher, lets them pass untouched.
 */
const ownRequests = new AsyncLocalStorage<true>();
const runOwn = <T>(send: () => T): T => ownRequests.run(true, send);

/** A plain Agent for the metadata and token requests of an engine made from options here: never the global dispatcher. */
let oauthAgent: Agent | undefined;
const oauthFetch: FetchLike = (url, init) =>
  undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: (oauthAgent ??= new Agent()) }) as unknown as Promise<Response>;

/** The engine of a `CrossAppAccess`, or one made from its options (with its own requests on a plain Agent). */
function engineFrom(engineOrOptions: CrossAppAccess | CrossAppAccessEngineOptions): Engine {
  const shared = engineBehind(engineOrOptions);
  if (shared) {
    shared.markOwnRequests(runOwn);
    return shared;
  }
  if (typeof engineOrOptions !== 'object' || engineOrOptions === null) throw new ConfigurationError('engineOrOptions', 'expected a CrossAppAccess or its options');
  const options = resolveEngineOptions(engineOrOptions);
  return new Engine(options, options.oauthFetch ?? oauthFetch);
}

/**
 * An undici interceptor that signs requests to MCP servers in with Cross-App Access, for
 * `Dispatcher.compose`, `new Agent().compose(...)` and `setGlobalDispatcher`: the same engine and
 * semantics as {@link CrossAppAccess.fetch} (only URLs inside a protected resource get a token;
 * one acquisition per token, shared; renewal ahead of expiry; after a 401 with our token, one
 * re-acquisition and one retry with the body replayed, a stream buffered up to
 * `maxReplayBodyBytes`; 403 `insufficient_scope` step-up; a request with no user fails closed with
 * `unknown_user`). Failures reach the handler's `onResponseError` as the same typed errors.
 *
 * `engineOrOptions` is a {@link CrossAppAccess} to share, or its options (then the interceptor makes
 * its own, whose metadata and token requests go through undici's `fetch` on a dedicated plain
 * `Agent`, unless they give `oauthFetch`). A shared engine without `oauthFetch` keeps sending its
 * own requests through the global fetch, for every adapter, as before: this interceptor, installed
 * as the global dispatcher, recognises them (they run in an async context it marks) and lets them
 * pass untouched, so it never signs nor loops on them, and they keep the process's proxy and TLS
 * settings.
 *
 * The user is read once per logical request: undici's redirect and retry handlers, which dispatch
 * again with the same handler from socket callbacks, get the same user on every hop, and every
 * caller callback runs in the async context the request was dispatched in. Errors are owned as
 * undici's core owns them: a caller callback that throws is reported once to its
 * `onResponseError`. Through undici's `fetch` an error arrives as `TypeError: fetch failed` with the
 * typed error in `cause` ({@link crossAppAccessErrorOf} finds it).
 *
 * Composition (`compose(a, b)`: `b` is outside `a`): compose `interceptors.redirect()` after this one,
 * so every hop is a new dispatch through here and is checked (beneath it, a request carrying a token
 * is not followed: the 3xx comes back). Compose `cache`, `deduplicate` and `dns` before it, where they
 * see the `Authorization` header (after it, answers to tokened requests are marked
 * `Cache-Control: private`, and a deduplicator with a per-request user is refused); `retry` works on
 * either side.
 *
 * @example
 * ```ts
 * import { Agent, interceptors, setGlobalDispatcher } from 'undici';
 * import { CrossAppAccess } from 'cross-app-access';
 * import { crossAppAccessInterceptor } from 'cross-app-access/undici';
 *
 * const xaa = new CrossAppAccess({ idp, client, resource: 'https://mcp.example.com/mcp' });
 * setGlobalDispatcher(
 *   new Agent().compose(crossAppAccessInterceptor(xaa, { user: 'alice', idToken: () => sso.idToken() }), interceptors.redirect()),
 * );
 * // global fetch, undici.request and every library on them now reach the MCP server signed in.
 * ```
 * @see https://github.com/modelcontextprotocol/ext-auth/blob/main/specification/stable/enterprise-managed-authorization.mdx MCP Enterprise-Managed Authorization (stable)
 */
export function crossAppAccessInterceptor(
  engineOrOptions: CrossAppAccess | CrossAppAccessEngineOptions,
  session: InterceptorSession,
): Dispatcher.DispatcherComposeInterceptor {
  const engine = engineFrom(engineOrOptions);
  const users = new RequestUsers(engine, session);
  const locate = targetReader();
  // Outside the resource a request passes through; it is watched when a 401 there is worth a
  // diagnostic, or when its user must be kept for a redirect that brings it inside.
  const watchOutside = users.perRequest || engine.options.resources.length > 0;

  return (next) => {
    const route = new Route(engine, next);
    return function crossAppAccessDispatch(opts, handler) {
      // The engine's own metadata and token requests, through the global fetch: never signed here.
      if (ownRequests.getStore() === true) return next(opts, handler);
      const target = locate(opts);
      if (!target || !engine.mayCarryToken(target)) {
        if (!target || !watchOutside) return next(opts, handler);
        users.note(handler);
        return next(opts, isComposedCoreHandler(handler) ? new OutsideRelay(handler, engine, target) : new OutsideRequest(handler, engine, target));
      }
      const sessionOf = users.sessionOf(handler);
      if (users.perRequest && isDeduplicator(handler)) {
        new SignedRequest(route, handler, opts, target, sessionOf).fail(deduplicatedAbove());
        return true;
      }
      const warm = isReplayableAsIs(opts.body) ? warmToken(engine, target, sessionOf) : undefined;
      // undici.request, stream, pipeline and fetch: relayed in undici's core API (no conversions).
      if (warm && isComposedCoreHandler(handler)) return new WarmRelay(route, handler, opts, target, sessionOf, warm).send();
      const request = new SignedRequest(route, handler, opts, target, sessionOf);
      if (warm) return request.sendWarm(warm);
      request.sendThroughEngine();
      return true;
    };
  };
}

/** The stored token for this request's user, with no I/O and no promise; else undefined (the engine's path). */
function warmToken(engine: Engine, target: Target, sessionOf: SessionResolver): WarmToken | undefined {
  try {
    const session = sessionOf();
    const warm = session && engine.warmToken(target, session);
    // A DPoP-bound token needs a new proof for each attempt (RFC 9449 §7.1): the engine's path signs it.
    return warm?.token.tokenType === 'DPoP' ? undefined : warm;
  } catch {
    return undefined; // the engine's path fails and reports it
  }
}

/**
 * undici's deduplicate interceptor composed after this one hands us its handler, which other
 * requests join while this one is under way: it never saw our `Authorization`, so it would give one
 * user's answer to every user asking for the same URL.
 */
function isDeduplicator(handler: Dispatcher.DispatchHandler): boolean {
  return typeof (handler as { addWaitingHandler?: unknown }).addWaitingHandler === 'function';
}

function deduplicatedAbove(): ConfigurationError {
  return new ConfigurationError(
    'interceptors',
    'interceptors.deduplicate() is composed after crossAppAccessInterceptor, where it cannot tell users apart (it never sees the Authorization header) and would give one user\'s answer to another; nothing was sent. Compose it before crossAppAccessInterceptor (beneath it), e.g. agent.compose(interceptors.deduplicate(), crossAppAccessInterceptor(xaa, session)).',
  );
}

/** Reads a dispatch's target once; MCP transports dispatch the same URL again and again. */
function targetReader(): (opts: Dispatcher.DispatchOptions) => Target | undefined {
  let last: { origin: string; path: string; target: Target | undefined } | undefined;
  return (opts) => {
    const origin = typeof opts.origin === 'string' ? opts.origin : opts.origin instanceof URL ? opts.origin.href : undefined;
    const path = opts.path;
    if (origin === undefined || typeof path !== 'string') return undefined;
    if (last?.origin === origin && last.path === path) return last.target;
    const base = parseUrl(origin);
    // The origin and path as undici will send them: `origin + path` (a path like `//x` stays a path).
    const url = base && (path.startsWith('/') ? parseUrl(base.origin + path) : undefined);
    const target = url && targetAt(url);
    last = { origin, path, target };
    return target;
  };
}

/**
 * A request outside the resource, passed on untouched, its caller's callbacks run in the async
 * context it was dispatched in (so a redirect the caller follows from them is its own). A 401 with a
 * Bearer challenge to it is explained, as the fetch adapter does: a typed error when only the
 * loopback host's spelling differs (`localhost` against `127.0.0.1`), else a diagnostic once.
 */
class OutsideRequest extends AsyncResource implements Dispatcher.DispatchHandler {
  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly engine: Engine,
    private readonly target: Target,
  ) {
    super('CrossAppAccessOutsideRequest');
  }
  onRequestStart(controller: Dispatcher.DispatchController, context: object): void {
    if (this.handler.onRequestStart) this.runInAsyncScope(this.handler.onRequestStart, this.handler, controller, context);
  }
  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: never, socket: never): void {
    if (this.handler.onRequestUpgrade) this.runInAsyncScope(this.handler.onRequestUpgrade, this.handler, controller, statusCode, headers, socket);
  }
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // A URL outside the resource only by its loopback host's spelling: a typed error naming the URL
    // to call, through onResponseError once (the abort delivers it), as the fetch adapter rejects.
    const mistake = statusCode === 401 ? this.engine.noticeOutside(statusCode, headerReader(headers), this.target) : undefined;
    if (mistake) {
      controller.abort(mistake);
      return;
    }
    if (this.handler.onResponseStart) this.runInAsyncScope(this.handler.onResponseStart, this.handler, controller, statusCode, headers, statusMessage);
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.handler.onResponseData) this.runInAsyncScope(this.handler.onResponseData, this.handler, controller, chunk);
  }
  onResponseEnd(controller: Dispatcher.DispatchController, trailers: never): void {
    if (this.handler.onResponseEnd) this.runInAsyncScope(this.handler.onResponseEnd, this.handler, controller, trailers);
  }
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (this.handler.onResponseError) this.runInAsyncScope(this.handler.onResponseError, this.handler, controller, error);
  }
}
