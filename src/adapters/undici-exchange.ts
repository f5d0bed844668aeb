import type { Dispatcher } from 'undici';
import type { Exchange } from '../engine/authorize.js';
import type { Answer } from '../engine/engine.js';
import { headerReader, prepareBody, withAuthorization, type PreparedBody } from './undici-body.js';

type Dispatch = Dispatcher.Dispatch;
type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

// A refused attempt's body is read and dropped (keeping its connection) up to this size; past it the
// attempt is aborted instead (its connection closed), so an answer we discard never costs more.
const MAX_DISCARDED_BYTES = 64 * 1024;

/** An attempt's answer, held (its body paused) until the engine says whether it is the final one. */
export interface UndiciAnswer extends Answer {
  /** This is the answer the caller gets: its start, held data and the rest go to the caller's handler. */
  deliver(): void;
}

/**
 * The controller the caller's handler holds for the whole request, across our attempts: abort stops
 * whatever is under way (a wait for a token, or an attempt); pause and resume reach the attempt
 * being delivered.
 */
class CallController implements Controller {
  #paused = false;
  #reason: Error | null = null;
  #aborted = false;
  /** The attempt whose answer is being delivered to the caller. */
  target: Controller | undefined;

  constructor(private readonly onAbort: (reason: Error) => void) {}

  get aborted() {
    return this.#aborted;
  }
  get paused() {
    return this.#paused;
  }
  get reason() {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.onAbort(reason);
  }
  pause(): void {
    this.#paused = true;
    this.target?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.target?.resume();
  }
}

/**
 * One caller's dispatch, sent for the engine: each attempt goes to the next dispatcher with its own
 * handler; the engine decides on each answer after its start (a retried attempt's body is read and
 * dropped, or the attempt aborted; never left hanging); the final answer reaches the caller's
 * handler. The caller's `opts` and headers are never modified.
 */
export class UndiciExchange implements Exchange<UndiciAnswer> {
  readonly controller: CallController;
  /** Aborted with the caller's reason: stops the engine's waits for this request. */
  readonly abortion = new AbortController();
  private prepared: PreparedBody | Promise<PreparedBody> | undefined;
  private current: Controller | undefined;
  private finished = false;

  constructor(
    private readonly next: Dispatch,
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly handler: Handler,
    private readonly maxReplayBytes: number,
  ) {
    this.controller = new CallController((reason) => {
      this.abortion.abort(reason);
      this.current?.abort(reason);
      this.fail(reason);
    });
  }

  /** Tells the caller's handler the request has started: from here on it may abort it. */
  start(): void {
    this.handler.onRequestStart?.(this.controller, {});
  }

  private body(): PreparedBody | Promise<PreparedBody> {
    if (this.prepared) return this.prepared;
    const body = this.opts.body;
    // The common case (a string or bytes, or none) needs no promise.
    if (body === null || body === undefined || typeof body === 'string' || ArrayBuffer.isView(body)) return (this.prepared = { body, replayable: true });
    this.prepared = prepareBody(body, this.maxReplayBytes, this.abortion.signal);
    this.prepared.then((p) => (this.prepared = p), () => undefined);
    return this.prepared;
  }

  /** True while the caller's body has not been read (nothing was sent). */
  get bodyUntouched(): boolean {
    return this.prepared === undefined;
  }

  async replayable(): Promise<boolean> {
    return (await this.body()).replayable;
  }

  async send(token: string | undefined): Promise<UndiciAnswer> {
    const prepared = await this.body();
    if (this.finished) throw this.controller.reason ?? new Error('The request was aborted.');
    const opts: Dispatcher.DispatchOptions & { maxRedirections?: number } = { ...this.opts, body: prepared.body };
    if (token !== undefined) {
      opts.headers = withAuthorization(this.opts.headers, `Bearer ${token}`);
      // A redirect interceptor composed beneath this one must not carry the token on: the 3xx comes
      // back (RFC 6750 §5.3). Composed above it, each hop is a new dispatch through here, checked.
      opts.maxRedirections = 0;
    }
    return new Promise<UndiciAnswer>((resolve, reject) => {
      const attempt = new Attempt(this, resolve, reject);
      try {
        this.next(opts, attempt);
      } catch (error) {
        reject(error);
      }
    });
  }

  /** The attempt under way, so that an abort reaches it. */
  attach(controller: Controller): void {
    this.current = controller;
    if (this.controller.aborted) controller.abort(this.controller.reason as Error);
  }

  /** Delivers the final answer's events to the caller's handler (once the request is not finished). */
  get caller(): Handler | undefined {
    return this.finished ? undefined : this.handler;
  }

  /** The request ended with its final answer. */
  done(): void {
    this.finished = true;
  }

  /** The request failed (or was aborted): the caller's handler hears it once. */
  fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    const reason = error instanceof Error ? error : new Error(String(error));
    try {
      this.handler.onResponseError?.(this.controller, reason);
    } catch {
      // A handler that cannot take an error (a legacy one without onError) has nowhere to put it.
    }
  }
}

type Phase = 'waiting' | 'held' | 'delivering' | 'discarding' | 'over';

/** The handler of one attempt: holds its answer until the engine decides, then delivers or drops it. */
class Attempt implements Handler, UndiciAnswer {
  private phase: Phase = 'waiting';
  private attempt: Controller | undefined;
  private held: Buffer[] = [];
  private heldEnd: { trailers: Headers } | { error: Error } | undefined;
  private discarded = 0;
  private discardDone: (() => void) | undefined;
  private redirectHistory = 0;
  status = 0;
  headers: { get(name: string): string | null } = headerReader({});
  redirected = false;
  readonly fromResource = true;
  private rawHeaders: Headers = {};
  private statusMessage = '';

  constructor(
    private readonly exchange: UndiciExchange,
    private readonly resolve: (answer: UndiciAnswer) => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  onRequestStart(controller: Controller, context: unknown): void {
    this.attempt = controller;
    // A redirect interceptor beneath this one names the hops it followed (undici's RedirectHandler).
    this.redirectHistory = (context as { history?: unknown[] } | undefined)?.history?.length ?? 0;
    this.exchange.attach(controller);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: unknown): void {
    this.phase = 'over';
    const caller = this.exchange.caller;
    this.exchange.done();
    this.exchange.controller.target = controller;
    caller?.onRequestUpgrade?.(this.exchange.controller, statusCode, headers as never, socket as never);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.attempt = controller;
    this.status = statusCode;
    this.rawHeaders = headers;
    this.statusMessage = statusMessage ?? '';
    this.headers = headerReader(headers);
    this.redirected = this.redirectHistory > 0;
    // Held until the engine decides (after this returns): nothing more is read meanwhile.
    controller.pause();
    this.phase = 'held';
    this.resolve(this);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.phase === 'delivering') this.exchange.caller?.onResponseData?.(this.exchange.controller, chunk);
    else if (this.phase === 'held') this.held.push(chunk);
    else if (this.phase === 'discarding') {
      this.discarded += chunk.length;
      if (this.discarded > MAX_DISCARDED_BYTES) controller.abort(new Error('A refused answer was too large to read; its connection was closed.'));
    }
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    if (this.phase === 'delivering') {
      this.phase = 'over';
      const caller = this.exchange.caller;
      this.exchange.done();
      caller?.onResponseEnd?.(this.exchange.controller, trailers as never);
    } else if (this.phase === 'held') this.heldEnd = { trailers };
    else this.over();
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (this.phase === 'waiting') {
      this.phase = 'over';
      this.reject(error);
    } else if (this.phase === 'delivering') {
      this.phase = 'over';
      this.exchange.fail(error);
    } else if (this.phase === 'held') this.heldEnd = { error };
    else this.over();
  }

  private over(): void {
    this.phase = 'over';
    this.discardDone?.();
  }

  deliver(): void {
    if (this.phase !== 'held') return;
    const caller = this.exchange.caller;
    if (!caller) return void this.discard();
    this.phase = 'delivering';
    const controller = this.exchange.controller;
    controller.target = this.attempt;
    caller.onResponseStart?.(controller, this.status, this.rawHeaders as never, this.statusMessage);
    for (const chunk of this.held.splice(0)) caller.onResponseData?.(controller, chunk);
    const end = this.heldEnd;
    if (end && 'error' in end) {
      this.phase = 'over';
      this.exchange.fail(end.error);
    } else if (end) {
      this.phase = 'over';
      this.exchange.done();
      caller.onResponseEnd?.(controller, end.trailers as never);
    } else if (!controller.paused) this.attempt?.resume();
  }

  /** Drops this answer: its body is read and thrown away (or the attempt aborted past a bound). */
  discard(): Promise<void> {
    if (this.phase !== 'held') return Promise.resolve();
    this.held = [];
    if (this.heldEnd) {
      this.phase = 'over';
      return Promise.resolve();
    }
    this.phase = 'discarding';
    return new Promise<void>((resolve) => {
      this.discardDone = resolve;
      this.attempt?.resume();
    });
  }
}
