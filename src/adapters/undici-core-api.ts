import { AsyncResource } from 'node:async_hooks';
import { Dispatcher, util, type Dispatcher as DispatcherTypes } from 'undici';
import { privateToSharedCaches } from './undici-body.js';

/**
 * undici 7's core speaks the handler API it had before 7 (`onConnect`, `onHeaders(status, rawHeaders,
 * resume)`, `onData`, `onComplete`, `onError`): `DispatcherBase.dispatch` unwraps every new-style
 * handler into it. `undici.request`, `stream`, `pipeline` and `fetch` hand their dispatcher a handler
 * in that API, which `compose` wraps into the new one for each interceptor (a `WrapHandler`, which
 * still answers the old methods by passing them straight through). A request whose caller is that
 * wrapper can be relayed in the core's API on both sides: the raw headers go through as the core
 * parsed them, with no wrapper, unwrapper, controller or header conversion per request.
 */
export type CoreHandler = Required<Pick<DispatcherTypes.DispatchHandler, 'onConnect' | 'onHeaders' | 'onData' | 'onComplete' | 'onError'>> &
  Pick<DispatcherTypes.DispatchHandler, 'onUpgrade' | 'onResponseStarted'>;

type Abort = (reason?: Error) => void;
type RawHeaders = Buffer[];

type HandlerClass = abstract new (...args: never[]) => unknown;
let wrapper: HandlerClass | null | undefined;

/**
 * The class `compose` wraps an old-style handler in, found once through undici's public API (a
 * composed probe dispatcher); null when this undici does not wrap, or its wrapper does not keep the
 * old methods (then no request takes the relay).
 */
function composeWrapper(): HandlerClass | null {
  if (wrapper !== undefined) return wrapper;
  wrapper = null;
  try {
    class Probe extends Dispatcher {
      override dispatch(): boolean {
        return true;
      }
    }
    let seen: unknown;
    const legacy = { onConnect() {}, onHeaders: () => true, onData: () => true, onComplete() {}, onError() {} };
    new Probe()
      .compose((dispatch) => (opts, handler) => {
        seen = handler;
        return dispatch(opts, handler);
      })
      .dispatch({ origin: 'http://probe.invalid', path: '/', method: 'GET' }, legacy as unknown as DispatcherTypes.DispatchHandler);
    const found = seen as { constructor?: unknown } | undefined;
    if (found && found !== legacy && speaksBoth(found) && typeof found.constructor === 'function') wrapper = found.constructor as HandlerClass;
  } catch {
    wrapper = null;
  }
  return wrapper;
}

function speaksBoth(handler: object): boolean {
  const h = handler as Record<string, unknown>;
  return typeof h.onRequestStart === 'function' && typeof h.onConnect === 'function' && typeof h.onHeaders === 'function' && typeof h.onData === 'function' && typeof h.onComplete === 'function' && typeof h.onError === 'function';
}

/** Whether `handler` is `compose`'s wrapper of an old-style handler: then it can be relayed in the core's API. */
export function isComposedCoreHandler(handler: object): handler is CoreHandler {
  const found = wrapper === undefined ? composeWrapper() : wrapper;
  return found !== null && handler instanceof found;
}

/**
 * The handler of one attempt in the core's API, relaying to a caller in the same API. It owns the
 * caller's errors as undici's core does (a caller callback that throws is reported once to its
 * `onError` and the attempt aborted), and runs every caller callback in the async context the request
 * was dispatched in, so that whatever the caller dispatches from them (a redirect, a retry) is its
 * own, not that of whoever opened the connection.
 */
export class CoreRelay extends AsyncResource {
  /** The core's abort of the attempt beneath. */
  protected abortAttempt: Abort | undefined;
  /** Nothing more reaches the caller: it heard `onComplete` or `onError`. */
  protected settled = false;
  protected reason: Error | undefined;

  constructor(protected readonly caller: CoreHandler) {
    super('CrossAppAccessRequest');
  }

  onConnect(abort: Abort, context?: unknown): void {
    this.abortAttempt = abort;
    if (this.settled) return abort(this.reason);
    try {
      // A bound method rather than an arrow: half the bytes (no context object for `this`).
      this.runInAsyncScope(this.caller.onConnect, this.caller, this.abort.bind(this), context);
    } catch (error) {
      this.failAttempt(error);
    }
  }

  onResponseStarted(): void {
    if (this.settled || !this.caller.onResponseStarted) return;
    try {
      this.runInAsyncScope(this.caller.onResponseStarted, this.caller);
    } catch (error) {
      this.failAttempt(error);
    }
  }

  onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void, statusMessage: string): boolean {
    return this.deliverHeaders(statusCode, rawHeaders, resume, statusMessage);
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return false;
    try {
      return this.runInAsyncScope(this.caller.onData, this.caller, chunk) !== false;
    } catch (error) {
      this.failAttempt(error);
      return false;
    }
  }

  onComplete(trailers: string[] | null): void {
    if (this.settled) return;
    this.settled = true;
    try {
      this.runInAsyncScope(this.caller.onComplete, this.caller, trailers);
    } catch (error) {
      // As undici's core does: a throw from the completion is reported to the error callback.
      this.report(error);
    }
  }

  onError(error: Error): void {
    this.fail(error);
  }

  onUpgrade(statusCode: number, rawHeaders: RawHeaders | null, socket: unknown): void {
    if (this.settled) return;
    this.settled = true;
    try {
      if (this.caller.onUpgrade) this.runInAsyncScope(this.caller.onUpgrade, this.caller, statusCode, rawHeaders, socket as never);
    } catch (error) {
      (socket as { destroy?: (error?: unknown) => void }).destroy?.(error);
      this.report(error);
    }
  }

  protected deliverHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void, statusMessage: string): boolean {
    if (this.settled) return false;
    try {
      return this.runInAsyncScope(this.caller.onHeaders, this.caller, statusCode, rawHeaders, resume, statusMessage) !== false;
    } catch (error) {
      this.failAttempt(error);
      return false;
    }
  }

  /** The caller's abort: it hears the reason once, and the attempt beneath stops. */
  protected abort(reason?: Error): void {
    if (this.settled) return;
    const error = reason ?? new Error('The request was aborted.');
    this.reason = error;
    this.fail(error);
    this.abortAttempt?.(error);
  }

  protected fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.report(error);
  }

  /** A caller callback threw: it hears the error once, and the attempt under way is aborted. */
  protected failAttempt(error: unknown): void {
    const reason = error instanceof Error ? error : new Error(String(error));
    this.reason ??= reason;
    this.fail(reason);
    this.abortAttempt?.(reason);
  }

  private report(error: unknown): void {
    const reason = error instanceof Error ? error : new Error(String(error));
    try {
      this.runInAsyncScope(this.caller.onError, this.caller, reason);
    } catch {
      // A handler that cannot take an error has nowhere to put it.
    }
  }
}

/** A new-style controller over the core's abort and resume, for an answer handed to the engine. */
export class CoreController implements DispatcherTypes.DispatchController {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;

  constructor(
    private readonly abortAttempt: Abort,
    private readonly resumeAttempt: () => void,
  ) {}

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.abortAttempt(reason);
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.resumeAttempt();
  }
}

const CACHE_CONTROL = 'cache-control';

/**
 * {@link privateToSharedCaches} on the core's raw headers: the same array when nothing changes (an
 * answer to an unsafe method with neither Cache-Control nor Expires, the MCP POST, is only scanned).
 */
export function rawPrivateToSharedCaches(rawHeaders: RawHeaders, method: string): RawHeaders {
  if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && method !== 'TRACE' && !namesCachingHeader(rawHeaders)) return rawHeaders;
  const parsed = util.parseHeaders(rawHeaders) as Record<string, string | string[] | undefined>;
  const marked = privateToSharedCaches(parsed, method);
  if (marked === parsed) return rawHeaders;
  const out: RawHeaders = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!isName(rawHeaders[i]!, CACHE_CONTROL)) out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  out.push(Buffer.from(CACHE_CONTROL, 'latin1'), Buffer.from(marked[CACHE_CONTROL] as string, 'latin1'));
  return out;
}

function namesCachingHeader(rawHeaders: RawHeaders): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (isName(name, CACHE_CONTROL) || isName(name, 'expires')) return true;
  }
  return false;
}

/** Header names compare case-insensitively (RFC 9110 §5.1); the length test keeps it cheap. */
function isName(raw: Buffer | string, name: string): boolean {
  return raw.length === name.length && util.headerNameToString(raw) === name;
}
