import type { Dispatcher } from 'undici';
import { readCapped } from '../bounded-read.js';

type DispatchBody = Dispatcher.DispatchOptions['body'];
type Headers = Dispatcher.DispatchOptions['headers'];

/** A request body for the engine: what to send, and whether it can be sent again. */
export interface PreparedBody {
  readonly body: DispatchBody;
  /** False for a stream past the cap (sent once, then its 401 goes back) or a body we cannot copy. */
  readonly replayable: boolean;
}

/** Bodies undici writes afresh from the same value on every dispatch. */
export function isReplayableAsIs(body: unknown): boolean {
  return body === null || body === undefined || typeof body === 'string' || ArrayBuffer.isView(body) || body instanceof ArrayBuffer;
}

function isAsyncIterable(body: unknown): body is AsyncIterable<Uint8Array | string> {
  return typeof body === 'object' && body !== null && typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/**
 * Makes a dispatch body replayable: string, Buffer and Uint8Array as they are; a stream or async
 * iterable (what Node's fetch dispatches) read into memory up to `maxBytes`. Past the cap, what was
 * read and the rest of the stream are sent once. Anything else (FormData…) is sent once as it is.
 */
export async function prepareBody(body: DispatchBody, maxBytes: number, signal: AbortSignal): Promise<PreparedBody> {
  if (isReplayableAsIs(body)) return { body, replayable: true };
  if (!isAsyncIterable(body)) return { body, replayable: false };
  const iterator = body[Symbol.asyncIterator]();
  const nextBytes = async () => {
    const next = await iterator.next();
    return next.done ? next : { done: false as const, value: typeof next.value === 'string' ? Buffer.from(next.value) : next.value };
  };
  // A stream that never ends must not outlive the caller's abort.
  const read = await readCapped(nextBytes, maxBytes, signal, () => iterator.return?.().catch(() => undefined));
  if (!read.complete) return { body: rest(read.chunks, iterator) as unknown as DispatchBody, replayable: false };
  return { body: Buffer.concat(read.chunks, read.size), replayable: true };
}

/** What was read, then the rest of the caller's stream: the body of a request sent once. */
async function* rest(chunks: Uint8Array[], iterator: AsyncIterator<Uint8Array | string>): AsyncGenerator<Uint8Array | string> {
  yield* chunks;
  while (true) {
    const next = await iterator.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Frees a caller's stream body that will never be sent. */
export function discardBody(body: DispatchBody, reason: unknown): void {
  const stream = body as { destroy?: (error?: unknown) => void; cancel?: (reason?: unknown) => Promise<void>; locked?: boolean } | null | undefined;
  if (typeof stream?.destroy === 'function') stream.destroy();
  else if (typeof stream?.cancel === 'function' && !stream.locked) stream.cancel(reason).catch(() => undefined);
}

/**
 * The caller's headers (never modified) with `authorization` replaced by ours (RFC 6750 §2.1), in
 * every form undici takes: a record, a flat `[name, value, …]` array, or an iterable of pairs. A
 * caller's `host` naming another host than the target is dropped, so undici sends the target's: behind
 * a shared front end, a token must not reach another virtual host (RFC 9110 §7.2).
 */
export function withAuthorization(headers: Headers, authorization: string, target: URL, proof?: string): Headers {
  if (headers === null || headers === undefined) return proof === undefined ? { authorization } : { authorization, dpop: proof };
  if (isPlainRecord(headers) && !namesAuthorizationOrHost(headers, proof !== undefined)) {
    // The common case, a record without either header: copied, ours added (no array to build).
    const record: Record<string, unknown> = Object.assign({}, headers);
    record.authorization = authorization;
    if (proof !== undefined) record.dpop = proof;
    return record as Headers;
  }
  return flatWithAuthorization(headers, authorization, target, proof);
}

/**
 * {@link withAuthorization} for every other form, flattened to `[name, value, …]`. A function of its
 * own: its closure's captured variables would otherwise cost the common case a context per call.
 */
function flatWithAuthorization(headers: NonNullable<Headers>, authorization: string, target: URL, proof: string | undefined): string[] {
  const flat: string[] = [];
  const push = (name: unknown, value: unknown) => {
    const key = String(name);
    if (isNamed(key, 'authorization')) return;
    // A caller's own proof never goes with ours (RFC 9449 §4.3: exactly one DPoP header).
    if (proof !== undefined && isNamed(key, 'dpop')) return;
    if (isNamed(key, 'host') && !namesHost(value, target)) return;
    if (Array.isArray(value)) for (const v of value) flat.push(key, String(v));
    else if (value !== undefined) flat.push(key, String(value));
  };
  if (Array.isArray(headers) && (headers.length === 0 || !Array.isArray(headers[0]))) {
    for (let i = 0; i < headers.length; i += 2) push(headers[i], headers[i + 1]);
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) push(name, value);
  } else {
    const record = headers as Record<string, unknown>;
    for (const name in record) if (Object.hasOwn(record, name)) push(name, record[name]);
  }
  flat.push('authorization', authorization);
  if (proof !== undefined) flat.push('dpop', proof);
  return flat;
}

function isPlainRecord(headers: object): headers is Record<string, unknown> {
  const proto = Object.getPrototypeOf(headers) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Header names compare case-insensitively (RFC 9110 §5.1); the length test keeps it cheap. */
function isNamed(key: string, name: string): boolean {
  return key.length === name.length && key.toLowerCase() === name;
}

function namesAuthorizationOrHost(record: Record<string, unknown>, orDpop: boolean): boolean {
  for (const key in record) if (isNamed(key, 'authorization') || isNamed(key, 'host') || (orDpop && isNamed(key, 'dpop'))) return true;
  return false;
}

/** Whether a `Host` value names the target's host (with or without its default port). */
function namesHost(value: unknown, target: URL): boolean {
  if (typeof value !== 'string') return false;
  const host = value.trim().toLowerCase();
  return host === target.host || host === `${target.hostname}:${target.port || (target.protocol === 'https:' ? '443' : '80')}`;
}

/**
 * The dispatch options of an attempt carrying a token: the caller's, with our `authorization`, and
 * `maxRedirections: 0` so that a redirect interceptor composed beneath this one does not carry the
 * token on (RFC 6750 §5.3); composed above it, each hop is a new dispatch through here, checked.
 */
export function signedOptions(opts: Dispatcher.DispatchOptions, body: DispatchBody, authorization: string, target: URL, proof?: string): Dispatcher.DispatchOptions {
  // Object.assign, then the members: V8 adds members to a spread's copy on a slow path.
  const signed = Object.assign({}, opts) as Dispatcher.DispatchOptions & { maxRedirections?: number };
  signed.body = body;
  signed.headers = withAuthorization(opts.headers, authorization, target, proof);
  signed.maxRedirections = 0;
  return signed;
}

type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * An answer to a request that carried our token, for whatever caches it above us: `private` added to
 * its Cache-Control unless the server already said how a shared cache may use it (`public`,
 * `s-maxage`, `must-revalidate`, `no-store`, `private`). A cache composed after this interceptor
 * never sees the `Authorization` header, so it could not apply RFC 9111 §3.5 itself; the caller's
 * headers object is never modified. An answer to an unsafe method (an MCP POST) with neither
 * Cache-Control nor Expires cannot be stored by any cache (RFC 9110 §9.3.3: only with explicit
 * freshness), so it goes as it came.
 */
export function privateToSharedCaches(headers: ResponseHeaders, method: string): ResponseHeaders {
  const value = headers['cache-control'];
  if (value === undefined && headers.expires === undefined && !isSafe(method)) return headers;
  const text = value === undefined ? undefined : Array.isArray(value) ? value.join(', ') : value;
  if (text !== undefined && saysHowSharedCachesMayStore(text)) return headers;
  const marked = Object.assign({}, headers);
  marked['cache-control'] = text === undefined ? 'private' : `${text}, private`;
  return marked;
}

/** RFC 9110 §9.2.1: the methods whose answers caches store without being told (undici's cache stores only these). */
function isSafe(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE';
}

/** RFC 9111 §3.5 and §5.2.2: directives that decide, for a shared cache, an authorized answer's fate. */
function saysHowSharedCachesMayStore(cacheControl: string): boolean {
  for (const part of cacheControl.split(',')) {
    const directive = part.trim().toLowerCase();
    const name = directive.split('=', 1)[0]!.trim();
    if (name === 'public' || name === 's-maxage' || name === 'must-revalidate' || name === 'no-store') return true;
    // A qualified `private="field"` only hides those fields: the answer stays storable.
    if (directive === 'private') return true;
  }
  return false;
}

/** A record of response headers (undici's form: lower-case names) read as fetch's `Headers.get`. */
export function headerReader(headers: Record<string, string | string[] | undefined>): { get(name: string): string | null } {
  return {
    get(name) {
      const value = headers[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}
