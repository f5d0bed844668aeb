/**
 * Small node:http helpers shared by the loopback test servers (IdP, AS, MCP).
 * Nothing here listens on anything but 127.0.0.1.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';

/** A running loopback server. */
export interface StartedServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  port: number;
  /** Stops listening and destroys every open (keep-alive) socket. Idempotent. */
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** One request a server answered, for a live log (`cross-app-access dev`). Not redacted: the logger redacts. */
export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  /** The raw `Authorization` header, if any. */
  authorization: string | undefined;
  /** What the server noted while handling it: form fields, the JSON-RPC method, the OAuth error. */
  notes: Record<string, string>;
}

/** Called once per answered request. */
export type RequestLogger = (entry: RequestLogEntry) => void;

/** Where and how a loopback server listens. */
export interface ListenOptions {
  /** Port on 127.0.0.1; 0 (default) for a free one. */
  port?: number;
  /** Called once per answered request. */
  onRequest?: RequestLogger;
  /** Serve over TLS (the URL is then `https://HOSTNAME:PORT`); still listening on 127.0.0.1 only. */
  tls?: TlsServerOptions;
  /**
   * Let a web page on another origin call this server (Fetch standard, "CORS protocol"): preflights
   * are answered here, never reaching the handler, its counters or its log, and every answer allows
   * any origin and exposes its headers (`WWW-Authenticate`, `Retry-After`). For a test page only:
   * no credentials are allowed. Default false.
   */
  cors?: boolean;
}

/**
 * Serve over TLS: a PEM certificate (chain) and key, and the host name the URL uses (one the
 * certificate names, RFC 9110 §4.3.4), e.g. `localhost`.
 */
export interface TlsServerOptions {
  cert: string;
  key: string;
  hostname: string;
}

const notes = new WeakMap<IncomingMessage | ServerResponse, Record<string, string>>();

/** Attaches notes to a request or its response, for {@link RequestLogEntry.notes}. */
export function noteRequest(target: IncomingMessage | ServerResponse, values: Record<string, string>): void {
  notes.set(target, { ...notes.get(target), ...values });
}

/** A reply sent instead of the server's own (see the servers' `answerFirst` option). */
export interface OverrideResponse {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** What an `answerFirst` function sees about the incoming request. */
export interface OverrideRequest {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed form (or JSON) body fields; `{}` for GET and for MCP requests. */
  form: Record<string, string>;
}

/**
 * Asked about every request once it is recorded and counted: a reply it returns is sent instead of
 * the server's own. `dev` gives none; the test servers (test/servers/) build fault injection on it.
 */
export type OverrideHook = (req: OverrideRequest) => OverrideResponse | undefined;

/** One recorded request, for assertions. */
export interface RecordedRequest {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  form: Record<string, string>;
  /**
   * Names of headers that must never reach an IdP or AS: `cookie`,
   * `mcp-protocol-version`, `mcp-session-id`, `authorization-bearer`.
   */
  leaked: string[];
}

/** Starts `handler` on 127.0.0.1 (a free port unless `listen.port`). Handler exceptions become a 500. */
export async function startHttpServer(handler: Handler, listen: ListenOptions = {}): Promise<StartedServer> {
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    if (listen.cors && allowCrossOrigin(req, res)) return;
    const onRequest = listen.onRequest;
    if (onRequest) {
      const started = performance.now();
      res.once('finish', () =>
        onRequest({
          method: req.method ?? 'GET',
          path: pathnameOf(req),
          status: res.statusCode,
          durationMs: Math.round(performance.now() - started),
          authorization: req.headers.authorization,
          notes: { ...notes.get(req), ...notes.get(res) },
        }),
      );
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        if (err instanceof BodyTooLargeError) {
          if (!res.headersSent) {
            sendJson(res, 413, { error: 'invalid_request', error_description: 'body too large' }, { connection: 'close' });
          } else res.end();
          return;
        }
        if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
        else res.end();
      });
  };
  const tls = listen.tls;
  const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, listener) : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: tls ? `https://${tls.hostname}:${port}` : `http://127.0.0.1:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * Adds the CORS headers of a non-credentialed answer (Fetch standard §3.2.3: `*` is allowed then)
 * and answers a preflight itself. True when the request was a preflight and is answered.
 */
function allowCrossOrigin(req: IncomingMessage, res: ServerResponse): boolean {
  res.setHeader('access-control-allow-origin', '*');
  const requestedMethod = req.headers['access-control-request-method'];
  if (req.method !== 'OPTIONS' || requestedMethod === undefined) {
    res.setHeader('access-control-expose-headers', '*');
    return false;
  }
  // `Authorization` is never covered by a `*` in Access-Control-Allow-Headers: the names asked for are echoed.
  const requestedHeaders = req.headers['access-control-request-headers'];
  res.writeHead(204, {
    'access-control-allow-methods': requestedMethod,
    ...(requestedHeaders ? { 'access-control-allow-headers': requestedHeaders } : {}),
    'access-control-max-age': '600',
    'content-length': '0',
  });
  res.end();
  req.resume();
  return true;
}

export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads the whole request body as UTF-8, rejecting with {@link BodyTooLargeError} past `limit`
 * bytes. The rest of an oversized body is drained (not destroyed) so a 413 can still be sent.
 */
export function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.resume();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks).toString('utf8'));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

/** Media type of the request without parameters, lower-cased (`''` when absent). */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export type ParsedBody =
  | { ok: true; form: Record<string, string> }
  | { ok: false; reason: string };

/**
 * Parses an `application/x-www-form-urlencoded` body (RFC 6749 §3.2: parameters must not repeat;
 * empty values count as omitted) or, when `allowJson`, a flat JSON object of scalars.
 */
export function parseBody(contentType: string, raw: string, allowJson: boolean): ParsedBody {
  if (contentType === 'application/x-www-form-urlencoded') return parseForm(raw);
  if (allowJson && contentType === 'application/json') {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return { ok: false, reason: 'body is not valid JSON' };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { ok: false, reason: 'JSON body must be an object' };
    }
    const form: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') form[k] = String(v);
    }
    return { ok: true, form };
  }
  return { ok: false, reason: `unsupported content type "${contentType || '(none)'}"` };
}

/** Form parser that rejects repeated parameters (RFC 6749 §3.2) and drops empty ones (§3.1). */
export function parseForm(raw: string): ParsedBody {
  const form: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if (Object.hasOwn(form, k)) return { ok: false, reason: `parameter "${k}" repeated` };
    if (v !== '') form[k] = v;
  }
  return { ok: true, form };
}

/** Sends a JSON body; token responses must not be cached (RFC 6749 §5.1). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  const { error, error_description: description } = (body ?? {}) as { error?: unknown; error_description?: unknown };
  if (typeof error === 'string') noteRequest(res, { error, ...(typeof description === 'string' ? { error_description: description } : {}) });
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** RFC 6749 §5.2 error response. */
export function sendOAuthError(
  res: ServerResponse,
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error, error_description: description }, headers);
}

/** Sends an {@link OverrideHook}'s reply verbatim. */
export function sendOverride(res: ServerResponse, reply: OverrideResponse): void {
  res.writeHead(reply.status, { 'content-length': Buffer.byteLength(reply.body), ...reply.headers });
  res.end(reply.body);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export type BasicCredentials =
  | { kind: 'none' }
  | { kind: 'malformed' }
  | { kind: 'basic'; clientId: string; clientSecret: string };

/**
 * Decodes `Authorization: Basic` (RFC 7617). Each half is form-urlencoded by the client and
 * decoded here with `decodeURIComponent`, exactly like the conformance AS (RFC 6749 §2.3.1).
 * `+` therefore stays a literal `+`.
 */
export function decodeBasic(header: string | undefined): BasicCredentials {
  if (header === undefined) return { kind: 'none' };
  const m = /^basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(header);
  if (!m) return /^basic(\s|$)/i.test(header) ? { kind: 'malformed' } : { kind: 'none' };
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { kind: 'malformed' };
  try {
    return {
      kind: 'basic',
      clientId: decodeURIComponent(decoded.slice(0, colon)),
      clientSecret: decodeURIComponent(decoded.slice(colon + 1)),
    };
  } catch {
    return { kind: 'malformed' };
  }
}

/** Constant-time string comparison for secrets. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Headers that must never reach an IdP or AS token/metadata endpoint. */
export function leakedHeaders(req: IncomingMessage): string[] {
  const out: string[] = [];
  if (req.headers.cookie !== undefined) out.push('cookie');
  if (req.headers['mcp-protocol-version'] !== undefined) out.push('mcp-protocol-version');
  if (req.headers['mcp-session-id'] !== undefined) out.push('mcp-session-id');
  if (/^bearer(\s|$)/i.test(req.headers.authorization ?? '')) out.push('authorization-bearer');
  return out;
}

/** Normalises an issuer path option: `''` for none, else `/a/b` (leading slash, no trailing one). */
export function normalizeIssuerPath(path: string | undefined): string {
  if (!path || path === '/') return '';
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** Request pathname (no query). */
export function pathnameOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
}

/** Copies request headers into a plain object for recording. */
export function headersOf(req: IncomingMessage): Record<string, string | string[] | undefined> {
  return { ...req.headers };
}

/** What a token server (IdP or AS) reads from every request before deciding how to answer. */
export interface TokenServerRequest {
  path: string;
  method: string;
  isToken: boolean;
  isMetadata: boolean;
  form: Record<string, string>;
  /** Why the token request's body could not be parsed, if it could not. */
  parseError: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  recorded: RecordedRequest;
}

/**
 * Reads a request to a token server: classifies it, counts it (before the body is read, so an
 * oversized one is still counted), and parses a token POST's form body.
 */
export async function readTokenServerRequest(
  req: IncomingMessage,
  options: { tokenPath: string; metadataPaths: readonly string[]; allowJson: boolean; count: (kind: 'token' | 'metadata') => void },
): Promise<TokenServerRequest> {
  const path = pathnameOf(req);
  const method = req.method ?? 'GET';
  const isToken = path === options.tokenPath;
  const isMetadata = options.metadataPaths.includes(path);
  if (isToken) options.count('token');
  if (isMetadata) options.count('metadata');
  let form: Record<string, string> = {};
  let parseError: string | undefined;
  if (isToken && method === 'POST') {
    const parsed = parseBody(mediaType(req), await readBody(req), options.allowJson);
    if (parsed.ok) form = parsed.form;
    else parseError = parsed.reason;
    noteRequest(req, form);
  }
  const headers = headersOf(req);
  return { path, method, isToken, isMetadata, form, parseError, headers, recorded: { path, method, headers, form, leaked: leakedHeaders(req) } };
}
