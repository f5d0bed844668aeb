import type { Answer } from '../engine/engine.js';
import type { Exchange } from '../engine/authorize.js';
import type { FetchLike } from '../fetch-types.js';
import { discardBody } from '../oauth/http.js';
import { prepareProbe, prepareRequest, sendRequest, type OutgoingRequest, type ProbeRequest } from './body.js';
import { redirectedFrom, sendWithToken } from './redirects.js';
import { valueOf, type Credential } from '../engine/credential.js';

/** An answer of fetch's, as the engine sees it, with the `Response` to hand back. */
export interface FetchAnswer extends Answer {
  readonly response: Response;
}

function answerOf(response: Response, redirected: boolean, fromResource: boolean): FetchAnswer {
  return { response, status: response.status, headers: response.headers, redirected, fromResource, discard: () => discardBody(response) };
}

/**
 * One caller's fetch call, sent for the engine: first, when the target is not known to be protected,
 * at once and as it is (a stream body is tee'd, not held back); then, with a token, from a copy the
 * engine can send again. Neither the caller's `Request` nor its `init` is ever modified.
 */
export class FetchExchange implements Exchange<FetchAnswer> {
  private probing: ProbeRequest | undefined;
  private request: OutgoingRequest | undefined;
  /** The warm path's answer, already sent with `token`: the engine's first `send` continues from it. */
  private sent: { token: Credential; response: Response } | undefined;

  constructor(
    private readonly next: FetchLike,
    private readonly href: string,
    private readonly target: URL,
    private readonly input: string | URL | Request,
    private readonly init: RequestInit | undefined,
    private readonly maxReplayBytes: number,
    private readonly signal: AbortSignal | null | undefined,
  ) {}

  /** The warm path sent `request` with `token` and got `response`, which needs the engine (a 401, 403 or redirect). */
  continueFrom(request: OutgoingRequest, token: Credential, response: Response): this {
    this.request = request;
    this.sent = { token, response };
    return this;
  }

  async send(token: Credential | undefined, inResource: (url: URL) => boolean): Promise<FetchAnswer> {
    const sent = this.sent;
    this.sent = undefined;
    if (sent && this.request && token !== undefined && valueOf(token) === valueOf(sent.token)) {
      const { response, fromResource } = await sendWithToken(this.next, this.request, token, inResource, sent.response);
      return answerOf(response, false, fromResource);
    }
    if (sent) await discardBody(sent.response);
    if (token === undefined) {
      this.probing = prepareProbe(this.href, this.input, this.init, this.maxReplayBytes, this.signal);
      const response = await sendRequest(this.next, this.probing.request, undefined);
      return answerOf(response, redirectedFrom(response, this.target), true);
    }
    if (!this.request) {
      const prepared = prepareRequest(this.href, this.input, this.init, this.maxReplayBytes, this.signal);
      this.request = prepared instanceof Promise ? await prepared : prepared;
    }
    const { response, fromResource } = await sendWithToken(this.next, this.request, token, inResource);
    return answerOf(response, false, fromResource);
  }

  async replayable(): Promise<boolean> {
    if (this.probing) {
      const replay = await this.probing.replay();
      this.probing = undefined;
      if (!replay) return false;
      this.request = replay;
    }
    return this.request?.replayable ?? true;
  }

  /** After the call: stop keeping a probe's body, and cancel a buffered stream body never sent. */
  finish(error?: unknown): void {
    this.probing?.release();
    const body = this.request?.body;
    if (error !== undefined && body instanceof ReadableStream && !body.locked) body.cancel(error).catch(() => undefined);
  }
}
