import { untilAborted } from './abort.js';
import type { FetchLike } from './http.js';

/** A caller's request, taken apart so it can be sent more than once without touching the original. */
export interface OutgoingRequest {
  readonly url: string;
  /** Everything of the caller's `init` (or `Request`) except headers and body. */
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

function isRequest(value: unknown): value is Request {
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

/**
 * Takes a fetch call apart without mutating the caller's `init` or `Request`: a `Request`'s body is
 * read from a clone, and a stream body is buffered up to `maxBytes` so it can be replayed.
 */
export async function prepareRequest(
  input: string | URL | Request,
  init: RequestInit | undefined,
  maxBytes: number,
  signal: AbortSignal | null | undefined,
): Promise<OutgoingRequest> {
  let base: RequestInit = {};
  let body: BodyInit | null | undefined = init?.body;
  if (isRequest(input)) {
    base = {
      method: input.method,
      headers: input.headers,
      signal: input.signal,
      redirect: input.redirect,
      credentials: input.credentials,
      cache: input.cache,
      keepalive: input.keepalive,
      integrity: input.integrity,
      referrer: input.referrer,
      referrerPolicy: input.referrerPolicy,
    };
    if (body === undefined && input.body !== null) body = input.clone().body;
  }
  // Members the caller left undefined keep the Request's own values, as fetch does.
  const merged: RequestInit = { ...base };
  for (const [name, value] of Object.entries(init ?? {})) {
    if (value !== undefined) (merged as Record<string, unknown>)[name] = value;
  }
  const { headers, body: _ignored, ...rest } = merged;
  if (body === null || body === undefined || isReplayableAsIs(body)) {
    return { url: requestUrl(input), init: rest, headers, body, replayable: true };
  }
  if (body instanceof ReadableStream) {
    const buffered = await bufferStream(body, maxBytes, signal);
    return { url: requestUrl(input), init: rest, headers, body: buffered.body, replayable: buffered.complete };
  }
  // Anything else (e.g. an async iterable some runtimes accept): send it once, as it is.
  return { url: requestUrl(input), init: rest, headers, body, replayable: false };
}

/** Reads a stream into memory up to `maxBytes`; past that, returns a stream of everything, unread. */
async function bufferStream(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  signal: AbortSignal | null | undefined,
): Promise<{ body: BodyInit; complete: boolean }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    // A stream that never ends must not outlive the caller's signal.
    const { done, value } = await untilAborted(reader.read(), signal).catch(async (reason: unknown) => {
      await reader.cancel(reason).catch(() => undefined);
      throw reason;
    });
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > maxBytes) {
      // Too big to keep: hand on what was read, then the rest of the original stream.
      const rest = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk);
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
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { body: bytes, complete: true };
}

/** Sends the request once, with `Authorization: Bearer` when a token is given (RFC 6750 §2.1). */
export function sendRequest(next: FetchLike, request: OutgoingRequest, accessToken: string | undefined): Promise<Response> {
  const headers = new Headers(request.headers);
  if (accessToken !== undefined) headers.set('authorization', `Bearer ${accessToken}`);
  const init: RequestInit & { duplex?: 'half' } = { ...request.init, headers, body: request.body };
  // Node's fetch requires duplex: 'half' for a stream body.
  if (request.body instanceof ReadableStream) init.duplex = 'half';
  return next(request.url, init);
}

/** Frees the connection of a response we will not read (PROTOCOL E-4). */
export async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Nothing to free.
  }
}
