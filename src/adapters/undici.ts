import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { authorize } from '../engine/authorize.js';
import type { Engine, Target } from '../engine/engine.js';
import { ConfigurationError } from '../errors.js';
import type { FetchLike } from '../fetch-types.js';
import type { CrossAppAccessEngineOptions } from '../options/types.js';
import { parseUrl } from '../url-rules.js';
import { CrossAppAccess, engineOf, routeDefaultOauthFetch, sessionResolver, type FetchSession } from '../cross-app-access.js';
import { resolveNow, sessionEmit } from './fetch.js';
import { discardBody, headerReader } from './undici-body.js';
import { UndiciExchange } from './undici-exchange.js';

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

/** A plain Agent for the engine's own metadata and token requests: never the global dispatcher. */
let oauthAgent: Agent | undefined;
const oauthFetch: FetchLike = (url, init) =>
  undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: (oauthAgent ??= new Agent()) }) as unknown as Promise<Response>;

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
 * its own). When the engine has no `oauthFetch`, its metadata and token requests go from now on
 * through undici's `fetch` on a dedicated plain `Agent`, never through the global dispatcher, so an
 * interceptor installed there never sees (nor loops on) the engine's own requests.
 *
 * Redirects: compose undici's `interceptors.redirect()` after this one (outside it), so every hop
 * is a new dispatch through here and is checked; a redirect interceptor composed beneath it does
 * not follow a request that carries a token (the 3xx comes back instead).
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
 */
export function crossAppAccessInterceptor(
  engineOrOptions: CrossAppAccess | CrossAppAccessEngineOptions,
  session: InterceptorSession,
): Dispatcher.DispatcherComposeInterceptor {
  let xaa: CrossAppAccess;
  if (engineOrOptions instanceof CrossAppAccess) xaa = engineOrOptions;
  else if (typeof engineOrOptions === 'object' && engineOrOptions !== null) xaa = new CrossAppAccess(engineOrOptions);
  else throw new ConfigurationError('engineOrOptions', 'expected a CrossAppAccess or its options');
  const engine = engineOf(xaa);
  const sessionFor = sessionResolver(engine, session);
  routeDefaultOauthFetch(xaa, oauthFetch);
  const locate = targetReader();

  return (dispatch) =>
    function crossAppAccessDispatch(opts, handler) {
      const target = locate(opts);
      if (!target || !engine.mayCarryToken(target)) {
        if (target && engine.options.resources.length > 0) return dispatch(opts, new OutsideNotice(handler, engine, target));
        return dispatch(opts, handler);
      }
      const started = engine.now();
      // The user of this request, read once, now (when it is dispatched), as the fetch adapter does.
      const sessionOfCall = resolveNow(sessionFor);
      const exchange = new UndiciExchange(dispatch, opts, handler, engine.options.maxReplayBodyBytes);
      exchange.start();
      authorize(engine, target, sessionOfCall, exchange.abortion.signal, exchange).then(
        (answer) => answer.deliver(),
        (error: unknown) => {
          engine.reportFailure(error, started, sessionEmit(sessionOfCall) ?? engine.emit);
          if (exchange.bodyUntouched) discardBody(opts.body, error);
          exchange.fail(error);
        },
      );
      return true;
    };
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
    const target = url && { href: url.href, url, origin: url.origin, path: url.pathname };
    last = { origin, path, target };
    return target;
  };
}

/**
 * A request outside the configured resource, passed on untouched: a 401 with a Bearer challenge to
 * it is reported once (the usual `localhost` against `127.0.0.1` mistake), as the fetch adapter does.
 */
class OutsideNotice implements Dispatcher.DispatchHandler {
  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly engine: Engine,
    private readonly target: Target,
  ) {}
  onRequestStart(controller: Dispatcher.DispatchController, context: object): void {
    this.handler.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: never, socket: never): void {
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode === 401) this.engine.noticeOutside(statusCode, headerReader(headers), this.target);
    this.handler.onResponseStart?.(controller, statusCode, headers as never, statusMessage);
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.handler.onResponseData?.(controller, chunk);
  }
  onResponseEnd(controller: Dispatcher.DispatchController, trailers: never): void {
    this.handler.onResponseEnd?.(controller, trailers);
  }
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.handler.onResponseError?.(controller, error);
  }
}
