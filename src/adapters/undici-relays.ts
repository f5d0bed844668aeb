import { util, type Dispatcher } from 'undici';
import type { SessionResolver } from '../engine/authorize.js';
import type { Engine, Target, WarmToken } from '../engine/engine.js';
import { headerReader } from './undici-body.js';
import { CoreController, CoreRelay, rawPrivateToSharedCaches, type CoreHandler } from './undici-core-api.js';
import { SignedRequest, type Route } from './undici-request.js';

type RawHeaders = Buffer[];

/**
 * The warm path in the core's API (see {@link CoreRelay}): one attempt with the stored token, its
 * answer relayed as it came, marked private for caches above us (RFC 9111 §3.5). Only a 401 or 403
 * needs the engine (re-acquisition, step-up): from there the request is a {@link SignedRequest}, as
 * if it had been one from the start.
 */
export class WarmRelay extends CoreRelay {
  private diverted: SignedRequest | undefined;
  private controller: CoreController | undefined;

  constructor(
    private readonly route: Route,
    caller: CoreHandler,
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly target: Target,
    private readonly sessionOf: SessionResolver,
    private readonly warm: WarmToken,
  ) {
    super(caller);
  }

  send(): boolean {
    const signed = this.route.sign(this.opts, this.opts.body, this.warm.token.value, this.target.url);
    return this.route.next(signed, this as unknown as Dispatcher.DispatchHandler);
  }

  override onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void, statusMessage: string): boolean {
    if (this.settled) return false;
    if (statusCode === 401 || statusCode === 403) return this.divert(statusCode, rawHeaders, resume, statusMessage);
    return this.deliverHeaders(statusCode, rawPrivateToSharedCaches(rawHeaders, this.opts.method), resume, statusMessage);
  }

  override onData(chunk: Buffer): boolean {
    if (!this.diverted) return super.onData(chunk);
    this.diverted.onResponseData(this.controller!, chunk);
    return !this.controller!.paused;
  }

  override onComplete(trailers: string[] | null): void {
    if (!this.diverted) return super.onComplete(trailers);
    this.diverted.onResponseEnd(this.controller!, util.parseHeaders((trailers ?? []) as string[]) as Record<string, string>);
  }

  override onError(error: Error): void {
    if (!this.diverted) return super.onError(error);
    this.diverted.onResponseError(this.controller!, error);
  }

  protected override abort(reason?: Error): void {
    if (!this.diverted) return super.abort(reason);
    this.diverted.abort(reason ?? new Error('The request was aborted.'));
  }

  /** The answer goes to the engine, held, through a SignedRequest made in the caller's async context. */
  private divert(statusCode: number, rawHeaders: RawHeaders, resume: () => void, statusMessage: string): boolean {
    const caller = this.caller as unknown as Dispatcher.DispatchHandler;
    const request = this.runInAsyncScope(() => new SignedRequest(this.route, caller, this.opts, this.target, this.sessionOf));
    const controller = new CoreController(this.abortAttempt!, resume);
    this.diverted = request;
    this.controller = controller;
    request.continueWarm(this.warm);
    request.onResponseStart(controller, statusCode, util.parseHeaders(rawHeaders) as Record<string, string>, statusMessage);
    return !controller.paused;
  }
}

/**
 * A request outside the resource, in the core's API, passed on untouched (as `OutsideRequest` does in the new API):
 * a 401 to it whose URL differs from the resource's only by the loopback host's spelling is a typed
 * error, else the engine notes it.
 */
export class OutsideRelay extends CoreRelay {
  constructor(
    caller: CoreHandler,
    private readonly engine: Engine,
    private readonly target: Target,
  ) {
    super(caller);
  }

  override onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void, statusMessage: string): boolean {
    const mistake = statusCode === 401 && !this.settled ? this.engine.noticeOutside(statusCode, headerReader(util.parseHeaders(rawHeaders) as Record<string, string>), this.target) : undefined;
    if (mistake) {
      this.abort(mistake);
      return false;
    }
    return this.deliverHeaders(statusCode, rawHeaders, resume, statusMessage);
  }
}
