import type { Dispatcher } from 'undici';
import type { Exchange } from '../engine/authorize.js';
import type { Answer } from '../engine/engine.js';
import { headerReader, prepareBody, privateToSharedCaches, signedOptions, type PreparedBody } from './undici-body.js';
import type { Route, SignedRequest } from './undici-request.js';
import { DEFAULTS } from '../options/defaults.js';
import { valueOf, type Credential, type DpopCredential } from '../engine/credential.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

// A refused attempt's body is read and dropped (keeping its connection) up to this size; past it the
// attempt is aborted instead (its connection closed), so an answer we discard never costs more.
const MAX_DISCARDED_BYTES = DEFAULTS.maxDiscardedBytes;

const ignore = () => undefined;

/** An attempt's answer, held (its body paused) until the engine says whether it is the final one. */
export interface UndiciAnswer extends Answer {
  /** This is the answer the caller gets: its start, held data and the rest go to the caller's handler. */
  deliver(): void;
}

/**
 * A request on the engine's path: each attempt goes to the next dispatcher with its own handler; the
 * engine decides on each answer after its start (a retried attempt's body is read and dropped, or
 * the attempt aborted; never left hanging); the final answer reaches the caller through its
 * {@link SignedRequest}. The caller's `opts` and headers are never modified.
 */
export class UndiciExchange implements Exchange<UndiciAnswer> {
  /** Aborted with the caller's reason: stops the engine's waits for this request. */
  readonly abortion = new AbortController();
  private prepared: PreparedBody | Promise<PreparedBody> | undefined;
  /** The warm attempt's answer, held: the engine's first send with the same token continues from it. */
  private continued: { token: string; answer: Attempt } | undefined;

  constructor(
    private readonly request: SignedRequest,
    private readonly route: Route,
  ) {}

  /** The warm attempt sent `token` and its answer needs the engine: the handler that holds that answer. */
  continueFrom(token: string): Attempt {
    const answer = new Attempt(this.request, true, ignore, ignore);
    this.continued = { token, answer };
    return answer;
  }

  private body(): PreparedBody | Promise<PreparedBody> {
    if (this.prepared) return this.prepared;
    const body = this.request.opts.body;
    // The common case (a string or bytes, or none) needs no promise.
    if (body === null || body === undefined || typeof body === 'string' || ArrayBuffer.isView(body)) return (this.prepared = { body, replayable: true });
    this.prepared = prepareBody(body, this.route.engine.options.maxReplayBodyBytes, this.abortion.signal);
    this.prepared.then((p) => (this.prepared = p), ignore);
    return this.prepared;
  }

  /** True while the caller's body has not been read (nothing was sent). */
  get bodyUntouched(): boolean {
    return this.prepared === undefined && this.continued === undefined;
  }

  async replayable(): Promise<boolean> {
    return (await this.body()).replayable;
  }

  async send(token: Credential | undefined): Promise<UndiciAnswer> {
    const continued = this.continued;
    this.continued = undefined;
    if (continued) {
      if (token !== undefined && continued.token === valueOf(token)) return continued.answer;
      await continued.answer.discard();
    }
    const prepared = await this.body();
    if (this.request.finished) throw this.request.reason ?? new Error('The request was aborted.');
    const { opts, target } = this.request;
    if (typeof token === 'object') return this.sendWithProof(token, prepared);
    const sent = token === undefined ? { ...opts, body: prepared.body } : this.route.sign(opts, prepared.body, token, target.url);
    return this.attempt(sent, token !== undefined);
  }

  /**
   * A DPoP-bound token: `Authorization: DPoP` and a new proof for this attempt (RFC 9449 §7.1), and
   * once more with a new proof when the server asks for its nonce (§9), the body replayed, no new token.
   */
  private async sendWithProof(credential: DpopCredential, prepared: PreparedBody): Promise<UndiciAnswer> {
    const { opts, target } = this.request;
    const url = target.url.href;
    const signed = async () => signedOptions(opts, prepared.body, credential.authorization, target.url, await credential.proof(opts.method, url));
    const answer = await this.attempt(await signed(), true);
    if (!credential.asksForNewProof(url, answer.status, answer.headers) || !prepared.replayable) return answer;
    await answer.discard();
    if (this.request.finished) throw this.request.reason ?? new Error('The request was aborted.');
    const again = await this.attempt(await signed(), true);
    credential.asksForNewProof(url, again.status, again.headers);
    return again;
  }

  private attempt(sent: Dispatcher.DispatchOptions, tokened: boolean): Promise<UndiciAnswer> {
    return new Promise<UndiciAnswer>((resolve, reject) => {
      const attempt = new Attempt(this.request, tokened, resolve, reject);
      try {
        this.route.next(sent, attempt);
      } catch (error) {
        reject(error);
      }
    });
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
  private statusMessage: string | undefined;

  constructor(
    private readonly request: SignedRequest,
    /** It carried our token: its answer is marked private for caches above us. */
    private readonly tokened: boolean,
    private readonly resolve: (answer: UndiciAnswer) => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  onRequestStart(controller: Controller, context: unknown): void {
    this.attempt = controller;
    // A redirect interceptor beneath this one names the hops it followed (undici's RedirectHandler).
    this.redirectHistory = (context as { history?: unknown[] } | undefined)?.history?.length ?? 0;
    this.request.attach(controller);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: unknown): void {
    this.phase = 'over';
    this.request.deliverUpgrade(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.attempt = controller;
    this.status = statusCode;
    this.rawHeaders = headers;
    this.statusMessage = statusMessage;
    this.headers = headerReader(headers);
    this.redirected = this.redirectHistory > 0;
    // Held until the engine decides (after this returns): nothing more is read meanwhile.
    controller.pause();
    this.phase = 'held';
    this.resolve(this);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.phase === 'delivering') this.request.deliverData(chunk);
    else if (this.phase === 'held') this.held.push(chunk);
    else if (this.phase === 'discarding') {
      this.discarded += chunk.length;
      if (this.discarded > MAX_DISCARDED_BYTES) controller.abort(new Error('A refused answer was too large to read; its connection was closed.'));
    }
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    if (this.phase === 'delivering') {
      this.phase = 'over';
      this.request.deliverEnd(trailers);
    } else if (this.phase === 'held') this.heldEnd = { trailers };
    else this.over();
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (this.phase === 'waiting') {
      this.phase = 'over';
      this.reject(error);
    } else if (this.phase === 'delivering') {
      this.phase = 'over';
      this.request.fail(error);
    } else if (this.phase === 'held') this.heldEnd = { error };
    else this.over();
  }

  private over(): void {
    this.phase = 'over';
    this.discardDone?.();
  }

  deliver(): void {
    if (this.phase !== 'held') return;
    if (this.request.finished) return void this.discard();
    this.phase = 'delivering';
    const headers = this.tokened ? privateToSharedCaches(this.rawHeaders, this.request.opts.method) : this.rawHeaders;
    if (!this.request.deliverStart(this.attempt!, this.status, headers, this.statusMessage)) return void (this.phase = 'over');
    for (const chunk of this.held.splice(0)) if (!this.request.deliverData(chunk)) return void (this.phase = 'over');
    const end = this.heldEnd;
    if (end && 'error' in end) {
      this.phase = 'over';
      this.request.fail(end.error);
    } else if (end) {
      this.phase = 'over';
      this.request.deliverEnd(end.trailers);
    } else if (!this.request.paused) this.attempt?.resume();
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
