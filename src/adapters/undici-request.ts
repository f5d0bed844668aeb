import { AsyncResource } from 'node:async_hooks';
import type { Dispatcher } from 'undici';
import { authorize, type SessionResolver } from '../engine/authorize.js';
import type { Engine, Target, WarmToken } from '../engine/engine.js';
import { sessionEmit } from './fetch.js';
import { discardBody, privateToSharedCaches, signedOptions } from './undici-body.js';
import { UndiciExchange } from './undici-exchange.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

/** What every request through one interceptor shares: the engine and the dispatch beneath. */
export class Route {
  private lastToken = '';
  private lastAuthorization = '';

  constructor(
    readonly engine: Engine,
    readonly next: Dispatcher.Dispatch,
  ) {}

  /**
   * The dispatch options of an attempt carrying `token` to `target`: the one place that decides what
   * a request sends to prove it (every attempt, warm or through the engine, is signed here).
   */
  sign(opts: Dispatcher.DispatchOptions, body: Dispatcher.DispatchOptions['body'], token: string, target: URL): Dispatcher.DispatchOptions {
    return signedOptions(opts, body, this.authorization(token), target);
  }

  /** `Bearer <token>` (RFC 6750 §2.1), built once per token rather than once per request. */
  private authorization(token: string): string {
    if (token !== this.lastToken) {
      this.lastToken = token;
      this.lastAuthorization = `Bearer ${token}`;
    }
    return this.lastAuthorization;
  }
}

/**
 * One logical request through the interceptor, written as undici's own handlers are
 * (`lib/handler/*.js`): the handler of the attempt beneath us, and the one controller its caller
 * holds across attempts. The warm path is one attempt with the stored token whose callbacks go
 * straight to the caller; only a 401 or 403 hands the answer to the engine (re-acquisition,
 * step-up), which then sends its own attempts.
 *
 * It owns the caller's errors, as undici's core does: a caller callback that throws is caught, the
 * attempt aborted, and the error reported once through the caller's `onResponseError`. The request
 * is finished only once the caller's `onResponseEnd` returned (a retry handler throws from it to
 * ask for another attempt). Every caller callback runs in the async context the request was
 * dispatched in (as `undici.request`'s own handler does), so a redirect or a retry the caller
 * dispatches from it belongs to the caller, not to whoever opened the connection.
 */
export class SignedRequest extends AsyncResource implements Handler, Controller {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  /** The caller heard `onRequestStart`. */
  private started = false;
  /** The caller's `onResponseEnd` was called, or it heard `onResponseError`: nothing more reaches it. */
  private settled = false;
  /** The controller of the attempt under way beneath us: an abort reaches it. */
  private attempt: Controller | undefined;
  /** The attempt whose answer the caller is reading: pause and resume reach it. */
  private reading: Controller | undefined;
  /** The engine's handler of the warm attempt, once its answer (a 401, a 403) needs the engine. */
  private diverted: Handler | undefined;
  /** Stops the engine's waits (on the engine's path only). */
  private stopEngine: ((reason: Error) => void) | undefined;
  /** The stored token the warm attempt carries. */
  private warm: WarmToken | undefined;

  constructor(
    private readonly route: Route,
    private readonly handler: Handler,
    readonly opts: Dispatcher.DispatchOptions,
    readonly target: Target,
    readonly sessionOf: SessionResolver,
  ) {
    super('CrossAppAccessRequest');
  }

  /** The warm path: one attempt with the stored token, at once; the engine only for a 401 or 403. */
  sendWarm(warm: WarmToken): boolean {
    this.warm = warm;
    return this.route.next(this.route.sign(this.opts, this.opts.body, warm.token.value, this.target.url), this);
  }

  /**
   * A warm attempt relayed in the core's API (`WarmRelay`) got an answer that needs the engine: the
   * caller heard that the request started, and its answer comes here next.
   */
  continueWarm(warm: WarmToken): void {
    this.warm = warm;
    this.started = true;
  }

  /** The engine's path from the start (a token to acquire, a resource to learn, a stream body to buffer). */
  sendThroughEngine(): void {
    this.begin({});
    if (!this.settled) this.throughEngine(new UndiciExchange(this, this.route));
  }

  private throughEngine(exchange: UndiciExchange, warm?: WarmToken): void {
    const engine = this.route.engine;
    const started = engine.now();
    this.stopEngine = (reason) => exchange.abortion.abort(reason);
    authorize(engine, this.target, this.sessionOf, exchange.abortion.signal, exchange, warm).then(
      (answer) => {
        try {
          answer.deliver();
        } catch (error) {
          this.fail(error);
        }
      },
      (error: unknown) => {
        engine.reportFailure(error, started, sessionEmit(this.sessionOf) ?? engine.emit);
        if (exchange.bodyUntouched) discardBody(this.opts.body, error);
        this.fail(error);
      },
    );
  }

  // --- The caller's controller ---------------------------------------------------------------

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
    if (this.settled) return;
    const attempt = this.attempt;
    this.stopEngine?.(reason);
    this.fail(reason);
    attempt?.abort(reason);
  }

  pause(): void {
    this.#paused = true;
    this.reading?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.reading?.resume();
  }

  // --- Delivery to the caller, for both paths --------------------------------------------------

  /** True once nothing more reaches the caller. */
  get finished(): boolean {
    return this.settled;
  }

  /** An attempt of ours started beneath: an abort reaches it (at once, if the caller aborted already). */
  attach(controller: Controller): void {
    this.attempt = controller;
    if (this.settled) controller.abort(this.#reason ?? new Error('The request was already finished.'));
  }

  /** The caller hears that the request started, once, whatever the attempts beneath. */
  begin(context: object): void {
    if (this.started) return;
    this.started = true;
    try {
      if (this.handler.onRequestStart) this.runInAsyncScope(this.handler.onRequestStart, this.handler, this, context);
    } catch (error) {
      this.failAttempt(error);
    }
  }

  /** An answer's start; false if the caller is gone (then the attempt was aborted). */
  deliverStart(controller: Controller, statusCode: number, headers: Headers, statusMessage: string | undefined): boolean {
    if (this.settled) return false;
    this.reading = controller;
    if (this.#paused) controller.pause();
    try {
      if (this.handler.onResponseStart) this.runInAsyncScope(this.handler.onResponseStart, this.handler, this, statusCode, headers, statusMessage);
    } catch (error) {
      this.failAttempt(error);
    }
    return !this.settled;
  }

  deliverData(chunk: Buffer): boolean {
    if (this.settled) return false;
    try {
      if (this.handler.onResponseData) this.runInAsyncScope(this.handler.onResponseData, this.handler, this, chunk);
    } catch (error) {
      this.failAttempt(error);
    }
    return !this.settled;
  }

  deliverEnd(trailers: Headers): void {
    if (this.settled) return;
    this.settled = true;
    try {
      if (this.handler.onResponseEnd) this.runInAsyncScope(this.handler.onResponseEnd, this.handler, this, trailers);
    } catch (error) {
      // As undici's core does: a throw from onResponseEnd is reported to onResponseError (a retry
      // handler asks for another attempt this way).
      this.report(error);
    }
  }

  deliverUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.reading = controller;
    try {
      if (this.handler.onRequestUpgrade) this.runInAsyncScope(this.handler.onRequestUpgrade, this.handler, this, statusCode, headers, socket);
    } catch (error) {
      (socket as { destroy?: (error?: unknown) => void }).destroy?.(error);
      this.report(error);
    }
  }

  /** The request failed (or was aborted): the caller hears it once. */
  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.report(error);
  }

  /** A caller callback threw: it hears the error once, and the attempt under way is aborted. */
  private failAttempt(error: unknown): void {
    this.fail(error);
    this.attempt?.abort(error instanceof Error ? error : new Error(String(error)));
  }

  private report(error: unknown): void {
    const reason = error instanceof Error ? error : new Error(String(error));
    try {
      if (this.handler.onResponseError) this.runInAsyncScope(this.handler.onResponseError, this.handler, this, reason);
    } catch {
      // A handler that cannot take an error (a legacy one without onError) has nowhere to put it.
    }
  }

  // --- The handler of the warm attempt ---------------------------------------------------------

  onRequestStart(controller: Controller, context: object): void {
    this.attempt = controller;
    if (this.settled) return controller.abort(this.#reason ?? new Error('The request was already finished.'));
    this.begin(context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: unknown): void {
    this.deliverUpgrade(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.attempt = controller;
    // A 401 or 403 with our token: the engine decides (re-acquire, step up) before the caller hears.
    if (statusCode === 401 || statusCode === 403) return this.divert(controller, statusCode, headers, statusMessage);
    this.deliverStart(controller, statusCode, privateToSharedCaches(headers, this.opts.method), statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.diverted) return this.diverted.onResponseData?.(controller, chunk);
    this.deliverData(chunk);
  }

  onResponseEnd(controller: Controller, trailers: Headers): void {
    if (this.diverted) return this.diverted.onResponseEnd?.(controller, trailers);
    this.deliverEnd(trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    if (this.diverted) return this.diverted.onResponseError?.(controller, error);
    this.fail(error);
  }

  /** The warm attempt's answer goes to the engine, held, as the answer to its first send. */
  private divert(controller: Controller, statusCode: number, headers: Headers, statusMessage: string | undefined): void {
    const exchange = new UndiciExchange(this, this.route);
    const held = exchange.continueFrom(this.warm!.token.value);
    this.diverted = held;
    held.onRequestStart(controller, {});
    held.onResponseStart(controller, statusCode, headers, statusMessage);
    this.throughEngine(exchange, this.warm);
  }
}
