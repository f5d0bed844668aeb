import { untilAborted } from '../abort.js';
import { joinChunks, readCapped } from '../bounded-read.js';
import { CrossAppAccessError, OAuthResponseError, capitalize, untrustedText, type CrossAppAccessStage } from '../errors.js';
import type { FetchLike } from '../fetch-types.js';
import type { EndpointHolds } from './endpoint-holds.js';
import { parseRetryAfter } from './retry.js';
import { reportedUrl, requireSecureUrl } from '../url-rules.js';
import { DEFAULTS } from '../options/defaults.js';

// The fetch we were given, called as the MCP SDK's FetchLike (fetch-types.ts says what is accepted).
export type { FetchLike };

/** Size caps for bodies we parse. */
export const MAX_TOKEN_RESPONSE_BYTES = DEFAULTS.maxTokenResponseBytes;
export const MAX_METADATA_BYTES = DEFAULTS.maxMetadataBytes;

export interface JsonRequest {
  fetch: FetchLike;
  url: string;
  /** Names the endpoint in messages, in lower case: "the IdP token endpoint" (capitalised where a sentence starts). */
  what: string;
  stage: CrossAppAccessStage;
  timeoutMs: number;
  maxBytes: number;
  /** A form body makes this a POST; absent means GET. */
  form?: URLSearchParams;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Endpoints that asked to be left alone (`Retry-After`): checked before sending, updated from the answer. */
  holds?: EndpointHolds;
  /** Sees the answer's headers (DPoP reads `DPoP-Nonce` from them, RFC 9449 §8). */
  onHeaders?: (headers: Headers) => void;
}

/** A 2xx JSON object, or a non-2xx answer whose body we may have parsed. */
export type JsonResult =
  | { ok: true; status: number; body: Record<string, unknown> }
  | {
      ok: false;
      status: number;
      body: Record<string, unknown> | undefined;
      /** The server's `Retry-After`, in seconds (RFC 9110 §10.2.3). */
      retryAfter: number | undefined;
    };

/**
 * One request to a token or metadata endpoint: secure URL check first (MCP authorization spec, "Communication
 * Security"), no redirects (cf. RFC 9700 §4.12), no cookies or caller headers, a timeout, and a capped JSON body.
 * Network failures, timeouts, redirects, oversized and non-JSON bodies become typed errors whose
 * messages never quote the body.
 */
export async function requestJson(req: JsonRequest): Promise<JsonResult> {
  requireSecureUrl(req.url, capitalize(req.what), req.stage);
  req.holds?.check(req.url, req.what, req.stage);
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  const init: RequestInit = { method: 'GET', headers, redirect: 'manual', credentials: 'omit', signal };
  if (req.form) {
    init.method = 'POST';
    headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = req.form.toString();
    init.cache = 'no-store';
  }

  let response: Response;
  // Called as a plain function: browsers and workerd refuse a fetch whose `this` is not the global.
  const send = req.fetch;
  try {
    // Raced against the signal too, so a fetch below us that ignores `signal` cannot hang everyone.
    response = await untilAborted(send(req.url, init), signal);
  } catch (cause) {
    throw transportError(req, cause, timeout);
  }

  req.onHeaders?.(response.headers);
  if (response.status >= 300 && response.status < 400) {
    await discardBody(response);
    throw new CrossAppAccessError(
      `${capitalize(req.what)} at ${reportedUrl(req.url)} answered with a redirect (HTTP ${response.status}); redirects are never followed for token and metadata requests.`,
      { code: 'unexpected_redirect', stage: req.stage, status: response.status },
    );
  }

  let text: string;
  try {
    // The body is raced against the same signal: a fetch that ignores `signal` must not let a
    // body that trickles in (or never ends) outlast the timeout.
    text = await readCappedText(response, req.maxBytes, signal);
  } catch (cause) {
    if (cause instanceof CrossAppAccessError) throw withContext(cause, req, response.status);
    throw transportError(req, cause, timeout);
  }

  const body = parseJsonObject(text);
  if (response.ok) {
    if (!body) {
      throw new CrossAppAccessError(`${capitalize(req.what)} at ${reportedUrl(req.url)} answered HTTP ${response.status} with a body that is not a JSON object.`, {
        code: 'invalid_response',
        stage: req.stage,
        status: response.status,
      });
    }
    return { ok: true, status: response.status, body };
  }
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), Date.now());
  req.holds?.note(req.url, response.status, retryAfterMs);
  return { ok: false, status: response.status, body, retryAfter: retryAfterMs === undefined ? undefined : retryAfterMs / 1000 };
}

function withContext(error: CrossAppAccessError, req: JsonRequest, status: number): CrossAppAccessError {
  return new CrossAppAccessError(`${capitalize(req.what)} at ${reportedUrl(req.url)} answered HTTP ${status} with a body over ${req.maxBytes} bytes.`, {
    code: error.code,
    stage: req.stage,
    status,
  });
}

function transportError(req: JsonRequest, cause: unknown, timeout: AbortSignal): CrossAppAccessError {
  if (req.signal?.aborted) {
    return new CrossAppAccessError(`The request to ${req.what} at ${reportedUrl(req.url)} was aborted.`, { code: 'network_error', stage: req.stage, cause: req.signal.reason });
  }
  if (timeout.aborted) {
    return new CrossAppAccessError(`${capitalize(req.what)} at ${reportedUrl(req.url)} did not answer within ${req.timeoutMs} ms.`, { code: 'timeout', stage: req.stage });
  }
  const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : String(cause);
  return new CrossAppAccessError(`Could not reach ${req.what} at ${reportedUrl(req.url)}: ${untrustedText(reason, 200)}`, {
    code: 'network_error',
    stage: req.stage,
    cause,
  });
}

/** Frees the connection of a response we will not read. */
export async function discardBody(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // The body is useless to us; a failure to cancel it changes nothing.
  }
}

/**
 * Reads at most `maxBytes` of the body; past that, cancels the stream and throws. Every read is
 * raced against `signal`: on abort the stream is cancelled and the signal's reason thrown.
 */
async function readCappedText(response: Response, maxBytes: number, signal: AbortSignal): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await discardBody(response);
    throw new CrossAppAccessError('body too large', { code: 'response_too_large', stage: 'request' });
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  // On abort the cancellation is not awaited: a stream that ignored the signal may not settle it either.
  const read = await readCapped(() => reader.read(), maxBytes, signal, (reason) => void reader.cancel(reason).catch(() => undefined));
  if (!read.complete) {
    await reader.cancel().catch(() => undefined);
    throw new CrossAppAccessError('body too large', { code: 'response_too_large', stage: 'request' });
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(joinChunks(read));
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error for a token endpoint answer that is an RFC 6749 §5.2 error (any status, even a 2xx),
 * or undefined when the body carries no `error` member. `sent` are the secrets of the request.
 */
export function oauthErrorFrom(
  result: JsonResult,
  what: string,
  stage: CrossAppAccessStage,
  sent: readonly string[],
): OAuthResponseError | undefined {
  const error = result.body?.error;
  if (typeof error !== 'string' || error === '') return undefined;
  const description = untrustedText(result.body?.error_description, 300, sent);
  const code = untrustedText(error, 100, sent) ?? 'unknown';
  return new OAuthResponseError(
    `${capitalize(what)} answered HTTP ${result.status} with OAuth error "${code}"${description ? `: ${description}` : ''}.`,
    {
      code: 'oauth_error',
      stage,
      status: result.status,
      error: code,
      errorDescription: description,
      errorUri: untrustedText(result.body?.error_uri, 300, sent),
      retryAfter: result.ok ? undefined : result.retryAfter,
      maxAge: seconds(result.body?.max_age),
    },
  );
}

/** A non-negative number of seconds, as a number or a numeric string (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3 `max_age`); else undefined. */
function seconds(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** The error for a non-2xx answer without an OAuth error body (status only, never the body). */
export function httpErrorFrom(result: JsonResult, what: string, stage: CrossAppAccessStage): CrossAppAccessError {
  return new CrossAppAccessError(`${capitalize(what)} answered HTTP ${result.status}.`, {
    code: 'http_error',
    stage,
    status: result.status,
    retryAfter: result.ok ? undefined : result.retryAfter,
  });
}
