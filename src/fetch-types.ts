// The public fetch types. They name only globals that both the DOM lib and @types/node declare
// (`URL`, `Request`, `RequestInit`, `Response`), so the shipped .d.ts compiles with either.

/**
 * A fetch function as the MCP SDK types it (`FetchLike` in `@modelcontextprotocol/sdk` and in
 * `@modelcontextprotocol/client`): the type to give a fetch you write yourself.
 *
 * @example
 * ```ts
 * const logging: FetchLike = (url, init) => { console.log(String(url)); return fetch(url, init); };
 * const authedFetch = withCrossAppAccess(logging, options);
 * ```
 */
export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * The request `init` the wrapper gives the fetch it wraps, as far as types can say: member types that
 * every fetch implementation's `RequestInit` accepts (the DOM's, Node's, undici's), so each of those
 * fetches fits {@link CompatibleFetch}. (A caller's own body and headers are passed on as the caller
 * gave them; at run time every WHATWG fetch takes what another one does.)
 *
 * @example
 * ```ts
 * const init: FetchInit = { method: 'POST', headers: { accept: 'application/json' }, body: form.toString(), redirect: 'manual' };
 * ```
 */
export interface FetchInit {
  /** The HTTP method, as in `RequestInit`. */
  method?: string;
  /** The request headers, as a record or as name/value pairs. */
  headers?: Record<string, string> | [string, string][];
  /** The request body: a form-encoded string on token requests (a caller's own body is passed on as given). */
  body?: string | null;
  /** Aborts the request: the caller's signal, or a metadata or token request's `timeout`. */
  signal?: AbortSignal | null;
  /** `'manual'` on metadata and token requests (a redirect there is never followed); the caller's own on its requests. */
  redirect?: 'follow' | 'error' | 'manual';
  /** As in `RequestInit`. */
  credentials?: 'omit' | 'same-origin' | 'include';
  /** As in `RequestInit`. */
  cache?: 'default' | 'force-cache' | 'no-cache' | 'no-store' | 'only-if-cached' | 'reload';
}

/**
 * What the wrapper needs of a fetch's answer: its status, URL, headers and a WHATWG body stream.
 * Every WHATWG fetch's `Response` fits (the DOM's, Node's, undici's); node-fetch's, whose body is a
 * Node stream, does not.
 *
 * @example
 * ```ts
 * const answer: ResponseLike = await undici.fetch('https://mcp.example.com/mcp');
 * ```
 */
export interface ResponseLike {
  /** The HTTP status code. */
  readonly status: number;
  /** The URL that answered (after any redirects the fetch followed). */
  readonly url: string;
  /** The response headers. */
  readonly headers: {
    /** A header's value, or `null` when absent. */
    get(name: string): string | null;
  };
  /** The body as a WHATWG `ReadableStream`, or `null`. */
  readonly body: {
    /** Discards the body (of a 401 that is retried, for instance). */
    cancel(reason?: unknown): Promise<void>;
    /** A reader of the body's bytes. */
    getReader(): unknown;
  } | null;
}

/**
 * Any fetch the wrapper can sit on: global `fetch`, undici's `fetch`, the MCP SDK's `FetchLike`, or
 * another middleware's result. This is a parameter type, so it is as loose as it can be: a function
 * that accepts a URL string and a {@link FetchInit}, and answers with a {@link ResponseLike}.
 * (The SDK's `FetchLike` and undici's `fetch` each take an `init` that the other's `RequestInit` does
 * not fit; both take a `FetchInit`.) A function that cannot take a URL string, such as
 * `(url: URL) => …`, or that does not answer with a response, is refused.
 *
 * @example
 * ```ts
 * import { fetch as undiciFetch } from 'undici';
 *
 * const next: CompatibleFetch = undiciFetch;
 * const authedFetch = withCrossAppAccess(next, options);
 * ```
 */
export type CompatibleFetch = (input: string, init?: FetchInit) => Promise<ResponseLike>;

/**
 * What {@link withCrossAppAccess} returns: fetch's signature, so it fits wherever `fetch` or the MCP
 * SDK's `FetchLike` does, whichever fetch it wraps.
 *
 * @example
 * ```ts
 * const authedFetch: CrossAppAccessFetch = withCrossAppAccess(fetch, options);
 * const response = await authedFetch(new Request('https://mcp.example.com/mcp', { method: 'POST', body }));
 * ```
 */
export type CrossAppAccessFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * An MCP SDK style fetch middleware: takes the next fetch, returns a wrapped one. It fits the SDK's
 * `Middleware` type, so it composes with `applyMiddlewares`.
 *
 * @example
 * ```ts
 * const middleware: CrossAppAccessMiddleware = crossAppAccess(options);
 * const authedFetch = middleware(fetch);
 * ```
 */
export type CrossAppAccessMiddleware = (next: CompatibleFetch) => CrossAppAccessFetch;
