import pRetry from 'p-retry';
import { CrossAppAccessError, withAttempts } from '../errors.js';
import type { CrossAppAccessEvent } from '../events.js';

/** How transient failures of metadata and token requests are retried (our rule; `Retry-After` is honoured). */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** First back-off delay in ms; doubles each retry, with full jitter. */
  readonly baseDelayMs: number;
  /** A longer back-off or `Retry-After` than this is not waited for: the failure is returned. */
  readonly maxDelayMs: number;
  /** No retry starts after this long since the first attempt. */
  readonly maxElapsedMs: number;
}

export const NO_RETRY: RetryPolicy = { retries: 0, baseDelayMs: 0, maxDelayMs: 0, maxElapsedMs: 0 };

const TRANSIENT_OAUTH_ERRORS = new Set(['server_error', 'temporarily_unavailable']);

/**
 * Network errors, timeouts, 5xx, 429, `server_error` and `temporarily_unavailable` are transient;
 * every other OAuth 4xx answer is final (our rule).
 */
export function isTransient(error: unknown): error is CrossAppAccessError {
  if (!(error instanceof CrossAppAccessError)) return false;
  if (error.code === 'network_error' || error.code === 'timeout') return true;
  if (error.status !== undefined && (error.status >= 500 || error.status === 429)) return true;
  return error.error !== undefined && TRANSIENT_OAUTH_ERRORS.has(error.error);
}

const HTTP_DATE_START = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /;

/** `Retry-After` (RFC 9110 §10.2.3) as milliseconds from now: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only the three HTTP-date forms (IMF-fixdate, RFC 850, asctime) all start with a day name;
  // Date.parse alone would read junk such as "1.5" as a date in the past, i.e. "retry now".
  if (!HTTP_DATE_START.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}


/** A wait that keeps the process alive, for work whose callers are not tracked (metadata requests). */
function heldSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface RetryObserver {
  (info: { attempt: number; retriesLeft: number; delayMs: number; durationMs: number; error: CrossAppAccessError }): void;
}

/** A {@link RetryObserver} that reports each retry as a `retry` event. */
export function retryEvents(emit: (event: CrossAppAccessEvent) => void): RetryObserver {
  return function reportRetry({ attempt, retriesLeft, delayMs, durationMs, error }) {
    emit({ type: 'retry', stage: error.stage, attempt, retriesLeft, code: error.code, status: error.status, delayMs, durationMs });
  };
}

/**
 * Runs `attempt` until it succeeds, fails with a non-transient error, or the retries are spent.
 * The wait before a retry is the server's `Retry-After` when it sent one, else jittered exponential
 * back-off; a wait over `maxDelayMs` ends the retries. p-retry drives the attempts.
 */
export function withRetry<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  onRetry: RetryObserver,
  retryable: (error: unknown) => error is CrossAppAccessError = isTransient,
  /** How a wait between attempts is made (the engine's keeps the process alive only while a caller waits). */
  sleep: (ms: number) => Promise<void> = heldSleep,
): Promise<T> {
  if (policy.retries === 0) return attempt();
  const delayFor = (error: CrossAppAccessError, attemptNumber: number): number => {
    if (error.retryAfter !== undefined) return error.retryAfter * 1000;
    const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attemptNumber - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  };
  let startedAt = 0;
  let attempts = 0;
  const firstStartedAt = performance.now();
  const timed = () => {
    attempts++;
    startedAt = performance.now();
    return attempt();
  };
  // p-retry (7.x) computes its own wait from the attempt number alone (minTimeout × factor^n); it has
  // no option for a wait chosen per failure, such as a server's Retry-After. Its readme's way to wait
  // otherwise is an async onFailedAttempt, and a throw from that hook ends the retries with the thrown
  // error: so p-retry waits nothing itself, and the hook waits, or throws when the wait is too long.
  const retried = pRetry(timed, {
    retries: policy.retries,
    minTimeout: 0,
    // An overall deadline: no retry starts once the attempts so far have taken this long.
    maxRetryTime: policy.maxElapsedMs,
    shouldRetry: ({ error }) => retryable(error),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (!retryable(error) || retriesLeft === 0) return;
      const delayMs = delayFor(error, attemptNumber);
      if (delayMs > policy.maxDelayMs) throw error;
      onRetry({ attempt: attemptNumber, retriesLeft, delayMs, durationMs: Math.round(performance.now() - startedAt), error });
      await sleep(delayMs);
    },
  });
  // The final failure says how often and how long it was tried; code, stage, status and cause stay.
  return retried.catch((error: unknown) => {
    throw attempts > 1 ? withAttempts(error, attempts, performance.now() - firstStartedAt) : error;
  });
}
