import { joinChunks, readCapped } from '../bounded-read.js';
import type { FetchLike } from '../oauth/http.js';

/** A caller's request, taken apart so it can be sent more than once without touching the original. */
export interface OutgoingRequest {
  readonly url: string;
  /** The caller's `init` (or the `Request`'s members); its headers and body are not used: `headers` and `body` are. */
  readonly init: RequestInit;
  readonly headers: HeadersInit | undefined;
  readonly body: BodyInit | null | undefined;
  /** False for a stream body past the cap: it can be sent once only. */
  readonly replayable: boolean;
}

/** The URL a fetch call targets, as a string; never throws. */
export function requestUrl(input: string | URL | Request): string {
  if (typeof input === 'string') return input;
  if (input instanceof URL) return input.href;
  return input.url;
}

export function isRequest(value: unknown): value is Request {
  return typeof Request !== 'undefined' && value instanceof Request;
}

/** Bodies that fetch serialises afresh on every call, so they can be sent again as they are. */
function isReplayableAsIs(body: unknown): boolean {
  return (
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof FormData !== 'undefined' && body instanceof FormData)
  );
}

const NO_INIT: RequestInit = Object.freeze({});

/**
 * A fetch call taken apart: URL, init without headers and body, headers, body. `url` is the
 * snapshot the caller's target was checked against: the caller's `URL` object is never read again,
 * so changing it after the call cannot move the token elsewhere.
 */
function splitRequest(url: string, input: string | URL | Request, init: RequestInit | undefined): OutgoingRequest {
  if (!isRequest(input)) {
    // The common case (what MCP transports do). The caller's `init` is kept as it is (its headers and
    // body are overridden when it is sent): copying it without them here would make V8 give the copy
    // slow properties, and spreading that later costs microseconds per request.
    if (init === undefined) return { url, init: NO_INIT, headers: undefined, body: undefined, replayable: true };
    // Fetch reads `init` once, when it is called: so does this, so a caller changing its objects
    // afterwards changes nothing of a retry. A plain spread copy (members all present) stays fast.
    const snapshot: RequestInit = { ...init };
    const body = snapshot.body;
    return { url, init: snapshot, headers: copyHeaders(snapshot.headers), body, replayable: body === null || body === undefined || isReplayableAsIs(body) };
  }
  // fetch(request, init) is fetch(new Request(request, init)) (Fetch standard, "fetch method"
  // step 2): the same constructor merges them here, so every combination of the Request's body and
  // init's (an init body of null keeps the Request's own) behaves exactly as plain fetch does. A
  // clone is merged, so the caller's Request stays unused.
  const merged = new Request(input.clone(), init);
  const rest: RequestInit = {
    method: merged.method,
    signal: merged.signal,
    redirect: merged.redirect,
    credentials: merged.credentials,
    cache: merged.cache,
    keepalive: merged.keepalive,
    integrity: merged.integrity,
    referrer: merged.referrer,
    referrerPolicy: merged.referrerPolicy,
  };
  return { url: merged.url, init: rest, headers: merged.headers, body: merged.body, replayable: merged.body === null };
}

/**
 * The caller's headers as they are now, in the same form (a plain object stays one: fetch reads those
 * fastest). A `Headers`, a `Map` or another library's object is kept as it is: its kind is only known
 * to the fetch beneath.
 */
function copyHeaders(headers: HeadersInit | undefined): HeadersInit | undefined {
  if (Array.isArray(headers)) return headers.map(([name, value]) => [name, value] as [string, string]);
  if (isPlainObject(headers)) return { ...(headers as Record<string, string>) };
  return headers;
}

/**
 * Takes a fetch call to a protected resource apart without mutating the caller's `init` or
 * `Request`; a stream body is buffered up to `maxBytes` first so it can be replayed.
 */
export function prepareRequest(
  url: string,
  input: string | URL | Request,
  init: RequestInit | undefined,
  maxBytes: number,
  signal: AbortSignal | null | undefined,
): OutgoingRequest | Promise<OutgoingRequest> {
  const request = splitRequest(url, input, init);
  // Synchronous unless there is a stream to buffer: the warm path awaits nothing here.
  if (!(request.body instanceof ReadableStream)) return request;
  return bufferStream(request.body, maxBytes, signal, 'forward').then((buffered) => ({ ...request, body: buffered.body, replayable: buffered.complete }));
}

/** A request to a URL not yet known to be protected: sent at once, replayed only if a challenge asks. */
export interface ProbeRequest {
  /** What to send now. */
  readonly request: OutgoingRequest;
  /** The same request again, or undefined when its body could not be kept (past the cap). */
  replay(): Promise<OutgoingRequest | undefined>;
  /** No replay will be needed: stop keeping the body. */
  release(): void;
}

/**
 * Like {@link prepareRequest}, but never delays the request: a stream body is tee'd, one branch
 * sent at once, the other kept (up to `maxBytes`) in case the answer is a Bearer challenge.
 */
export function prepareProbe(
  url: string,
  input: string | URL | Request,
  init: RequestInit | undefined,
  maxBytes: number,
  signal: AbortSignal | null | undefined,
): ProbeRequest {
  const request = splitRequest(url, input, init);
  if (!(request.body instanceof ReadableStream)) {
    return { request, replay: async () => (request.replayable ? request : undefined), release: () => undefined };
  }
  const [sent, kept] = (request.body as ReadableStream<Uint8Array>).tee();
  // Stops keeping the body: the kept branch's reader is cancelled; the sent branch is untouched.
  const stop = new AbortController();
  const keepingSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const keeping = bufferStream(kept, maxBytes, keepingSignal, 'cancel').catch(() => ({ body: null, complete: false }));
  return {
    request: { ...request, body: sent, replayable: false },
    async replay() {
      const buffered = await keeping;
      return buffered.complete ? { ...request, body: buffered.body, replayable: true } : undefined;
    },
    release() {
      stop.abort();
    },
  };
}

/**
 * Reads a stream into memory up to `maxBytes`. Past that, 'forward' returns a stream of everything
 * (to be sent once, unread), and 'cancel' drops it.
 */
async function bufferStream(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  signal: AbortSignal | null | undefined,
  overflow: 'forward' | 'cancel',
): Promise<{ body: BodyInit | null; complete: boolean }> {
  const reader = stream.getReader();
  // A stream that never ends must not outlive the caller's signal.
  const read = await readCapped(() => reader.read(), maxBytes, signal, (reason) => reader.cancel(reason).catch(() => undefined));
  if (read.complete) return { body: joinChunks(read), complete: true };
  if (overflow === 'cancel') {
    await reader.cancel().catch(() => undefined);
    return { body: null, complete: false };
  }
  // Too big to keep: hand on what was read, then the rest of the original stream.
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of read.chunks) controller.enqueue(chunk);
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { body: rest, complete: false };
}

/**
 * The caller's headers (never modified) with `authorization` replaced. A plain object (or pairs for
 * pairs) rather than a `Headers`: fetch reads a plain object faster, which shows on every request.
 */
function withAuthorization(headers: HeadersInit | undefined, authorization: string, proof: string | undefined): HeadersInit {
  if (Array.isArray(headers)) {
    const pairs = headers.filter(([name]) => name.toLowerCase() !== 'authorization' && (proof === undefined || name.toLowerCase() !== 'dpop'));
    pairs.push(['authorization', authorization]);
    if (proof !== undefined) pairs.push(['dpop', proof]);
    return pairs;
  }
  if (headers === undefined || isPlainObject(headers)) {
    const out: Record<string, string> = {};
    const record = (headers ?? {}) as Record<string, string>;
    for (const name of Object.keys(record)) {
      if ((name.length !== 13 || name.toLowerCase() !== 'authorization') && (proof === undefined || name.toLowerCase() !== 'dpop')) out[name] = record[name] as string;
    }
    out.authorization = authorization;
    if (proof !== undefined) out.dpop = proof;
    return out;
  }
  // A Headers (of any library), a Map or another iterable of pairs: copied exactly.
  const copy = new Headers(headers as HeadersInit);
  copy.set('authorization', authorization);
  if (proof !== undefined) copy.set('dpop', proof);
  return copy;
}

/** The caller's headers without any `Authorization`: what goes to a URL outside the resource. */
export function withoutAuthorization(headers: HeadersInit | undefined): HeadersInit | undefined {
  if (headers === undefined) return undefined;
  const copy = new Headers(headers);
  copy.delete('authorization');
  // Nor a DPoP proof (RFC 9449 §4.2: a proof is for its own URL only).
  copy.delete('dpop');
  return copy;
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sends the request once, with `Authorization: Bearer` when a token is given (RFC 6750 §2.1). */
export function sendRequest(next: FetchLike, request: OutgoingRequest, accessToken: string | undefined, redirect?: RequestRedirect): Promise<Response> {
  return sendPrepared(next, request, accessToken === undefined ? undefined : `Bearer ${accessToken}`, undefined, redirect);
}

/** Sends the request once, with this `Authorization` value and `DPoP` proof when given. */
export function sendPrepared(next: FetchLike, request: OutgoingRequest, authorization: string | undefined, proof: string | undefined, redirect?: RequestRedirect): Promise<Response> {
  const headers = authorization === undefined ? request.headers : withAuthorization(request.headers, authorization, proof);
  const body = request.body;
  // One object literal each: adding members to a spread copy afterwards makes V8 slow it down.
  let init: RequestInit & { duplex?: 'half' };
  // Node's fetch requires duplex: 'half' for a stream body.
  if (body instanceof ReadableStream) init = { ...request.init, headers, body, redirect: redirect ?? request.init.redirect, duplex: 'half' };
  else if (redirect === undefined) init = { ...request.init, headers, body };
  // A member the spread source lacks costs microseconds after a spread, nothing before it. When the
  // caller's init has `redirect` (even undefined), it is overridden after; else it is set first.
  else if ('redirect' in request.init) init = { ...request.init, headers, body, redirect };
  else init = { redirect, ...request.init, headers, body };
  return next(request.url, init);
}

