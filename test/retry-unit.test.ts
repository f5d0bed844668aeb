/**
 * Unit tests of src/oauth/retry.ts: `parseRetryAfter` (RFC 9110 §10.2.3), `isTransient`
 * (which failures are retried) and `withRetry` (the policy driving p-retry). No I/O, no timers
 * beyond zero-delay back-off.
 */
import { describe, expect, it, vi } from 'vitest';
import { CrossAppAccessError, OAuthResponseError, type CrossAppAccessErrorCode } from '../src/index.js';
import { isTransient, NO_RETRY, parseRetryAfter, withRetry, type RetryPolicy } from '../src/oauth/retry.js';

/** 2025-01-01T12:00:00Z, a Wednesday. */
const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

describe('parseRetryAfter: delay-seconds', () => {
  it.each([
    ['0', 0],
    ['1', 1_000],
    ['120', 120_000],
    ['007', 7_000],
    [' 7 ', 7_000], // optional whitespace around a field value (RFC 9110 §5.5)
  ])('%j → %i ms', (value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });

  it('delay-seconds do not depend on the clock', () => {
    expect(parseRetryAfter('3', 0)).toBe(3_000);
    expect(parseRetryAfter('3', NOW)).toBe(3_000);
  });
});

describe('parseRetryAfter: HTTP-date', () => {
  it('an IMF-fixdate in the future → the milliseconds until then', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:00:05 GMT', NOW)).toBe(5_000);
    expect(parseRetryAfter(new Date(NOW + 2_000).toUTCString(), NOW)).toBe(2_000);
  });

  it('the obsolete RFC 850 form is understood too', () => {
    expect(parseRetryAfter('Wednesday, 01-Jan-25 12:00:30 GMT', NOW)).toBe(30_000);
  });

  it.each([
    ['an hour ago', 'Wed, 01 Jan 2025 11:00:00 GMT'],
    ['one second ago', 'Wed, 01 Jan 2025 11:59:59 GMT'],
    ['exactly now', 'Wed, 01 Jan 2025 12:00:00 GMT'],
    ['in 1990', 'Mon, 01 Jan 1990 00:00:00 GMT'],
  ])('a date %s → 0 (never negative)', (_, value) => {
    expect(parseRetryAfter(value, NOW)).toBe(0);
  });
});

describe('parseRetryAfter: absent or invalid', () => {
  it('no header (null) → undefined', () => {
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
  });

  it.each(['', '   ', 'soon', 'tomorrow', '5s', '1e3', '0x10', '2 minutes', '1,000', 'NaN'])('%j → undefined', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  // RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds, delay-seconds = 1*DIGIT. These are
  // neither, so they must be ignored (undefined → jittered back-off). V8's lenient Date.parse reads
  // them as dates in 2001 (Date.parse('1.5') === 978652800000), so parseRetryAfter returns 0 and the
  // request is retried at once instead of backing off.
  it('values that are neither delay-seconds nor an HTTP-date ("1.5", "-1", "+5", "Retry 2") → undefined, not 0', () => {
    const values = ['1.5', '-1', '+5', 'Retry 2', 'abc 12'];
    const parsed = Object.fromEntries(values.map((value) => [value, parseRetryAfter(value, NOW)]));
    expect(parsed).toStrictEqual(Object.fromEntries(values.map((value) => [value, undefined])));
  });
});

function caa(code: CrossAppAccessErrorCode, status?: number, error?: string): CrossAppAccessError {
  return new CrossAppAccessError(`test ${code}`, { code, stage: 'token_exchange', status, error });
}

describe('isTransient', () => {
  it.each([
    ['network_error', undefined],
    ['timeout', undefined],
  ] as const)('%s → transient', (code, status) => {
    expect(isTransient(caa(code, status))).toBe(true);
  });

  it.each([500, 501, 502, 503, 504, 599, 429])('http_error %i → transient', (status) => {
    expect(isTransient(caa('http_error', status))).toBe(true);
  });

  it.each([400, 401, 403, 404, 405, 409, 410, 413, 422, 428, 431, 499])('http_error %i → final', (status) => {
    expect(isTransient(caa('http_error', status))).toBe(false);
  });

  it.each(['server_error', 'temporarily_unavailable'])('OAuth error %s on a 400 → transient', (error) => {
    expect(isTransient(new OAuthResponseError('x', { code: 'oauth_error', stage: 'jwt_bearer', status: 400, error }))).toBe(true);
    // The same error code on a 2xx body is transient as well.
    expect(isTransient(new OAuthResponseError('x', { code: 'oauth_error', stage: 'jwt_bearer', status: 200, error }))).toBe(true);
  });

  it.each([
    ['invalid_request', 400],
    ['invalid_client', 401],
    ['invalid_grant', 400],
    ['invalid_scope', 400],
    ['unauthorized_client', 400],
    ['unsupported_grant_type', 400],
    ['invalid_target', 400],
    ['access_denied', 403],
  ])('OAuth error %s (HTTP %i) → final', (error, status) => {
    expect(isTransient(new OAuthResponseError('x', { code: 'oauth_error', stage: 'token_exchange', status, error }))).toBe(false);
  });

  it('an OAuth error body on a 5xx or 429 is transient by its status', () => {
    expect(isTransient(new OAuthResponseError('x', { code: 'oauth_error', stage: 'token_exchange', status: 503, error: 'invalid_request' }))).toBe(true);
    expect(isTransient(new OAuthResponseError('x', { code: 'oauth_error', stage: 'token_exchange', status: 429, error: 'invalid_request' }))).toBe(true);
  });

  it.each([
    ['unexpected_redirect', 302],
    ['unexpected_redirect', 307],
    ['invalid_response', 200],
    ['invalid_response', 404],
    ['response_too_large', 200],
    ['invalid_token_type', 200],
    ['insecure_url', undefined],
    ['login_required', 400],
    ['metadata_not_found', undefined],
    ['invalid_metadata', undefined],
    ['id_jag_mismatch', undefined],
    ['id_token_unavailable', undefined],
  ] as const)('%s (status %s) → final', (code, status) => {
    expect(isTransient(caa(code, status))).toBe(false);
  });

  it('anything that is not a CrossAppAccessError is final, even a fetch TypeError', () => {
    for (const value of [new Error('boom'), new TypeError('fetch failed'), undefined, null, 'network_error', { code: 'network_error' }]) {
      expect(isTransient(value)).toBe(false);
    }
  });
});

describe('withRetry', () => {
  const instant: RetryPolicy = { retries: 2, baseDelayMs: 0, maxDelayMs: 30_000, maxElapsedMs: 60_000 };

  /** An attempt that throws `errors` in turn, then returns 'ok'; counts its calls. */
  function scripted(...errors: unknown[]) {
    const state = { calls: 0 };
    const attempt = async () => {
      const error = errors[state.calls++];
      if (error !== undefined) throw error;
      return 'ok';
    };
    return { state, attempt };
  }

  it('transient failures are retried up to `retries` times, reporting each retry', async () => {
    const { state, attempt } = scripted(caa('http_error', 503), caa('network_error'));
    const seen: { attempt: number; retriesLeft: number; delayMs: number }[] = [];
    await expect(withRetry(attempt, instant, ({ attempt: n, retriesLeft, delayMs }) => seen.push({ attempt: n, retriesLeft, delayMs }))).resolves.toBe('ok');
    expect(state.calls).toBe(3);
    expect(seen).toEqual([
      { attempt: 1, retriesLeft: 2, delayMs: 0 },
      { attempt: 2, retriesLeft: 1, delayMs: 0 },
    ]);
  });

  it('after `retries` retries the last error is thrown, unchanged', async () => {
    const last = caa('http_error', 502);
    const { state, attempt } = scripted(caa('http_error', 503), caa('http_error', 503), last, caa('http_error', 503));
    const seen: number[] = [];
    await expect(withRetry(attempt, instant, ({ attempt: n }) => seen.push(n))).rejects.toBe(last);
    expect(state.calls).toBe(3);
    expect(seen).toEqual([1, 2]);
  });

  it('a final error is thrown at once, without a retry report', async () => {
    const final = new OAuthResponseError('x', { code: 'oauth_error', stage: 'token_exchange', status: 400, error: 'invalid_request' });
    const { state, attempt } = scripted(final);
    const seen: number[] = [];
    await expect(withRetry(attempt, instant, ({ attempt: n }) => seen.push(n))).rejects.toBe(final);
    expect(state.calls).toBe(1);
    expect(seen).toEqual([]);
  });

  it('NO_RETRY (retry: false) makes exactly one attempt', async () => {
    const first = caa('http_error', 503);
    const { state, attempt } = scripted(first);
    await expect(withRetry(attempt, NO_RETRY, () => expect.fail('no retry expected'))).rejects.toBe(first);
    expect(state.calls).toBe(1);
  });

  it('a Retry-After over maxDelay is not waited for: the error is thrown after one attempt', async () => {
    const slow = new CrossAppAccessError('x', { code: 'http_error', stage: 'token_exchange', status: 429, retryAfter: 31 });
    const { state, attempt } = scripted(slow);
    await expect(withRetry(attempt, instant, () => expect.fail('no retry expected'))).rejects.toBe(slow);
    expect(state.calls).toBe(1);
  });

  it('the caller can narrow what is retried (leg 2 retries only its own stage)', async () => {
    const leg1 = caa('http_error', 503);
    const { state, attempt } = scripted(leg1);
    const onlyJwtBearer = (error: unknown): error is CrossAppAccessError => isTransient(error) && error.stage === 'jwt_bearer';
    await expect(withRetry(attempt, instant, () => expect.fail('no retry expected'), onlyJwtBearer)).rejects.toBe(leg1);
    expect(state.calls).toBe(1);
  });

  it('no retry starts once maxElapsedMs has passed since the first attempt (an overall deadline)', async () => {
    // Only performance.now is faked (p-retry measures maxRetryTime with it): the attempt "takes" 30 ms.
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      let calls = 0;
      const slow = async () => {
        calls++;
        vi.advanceTimersByTime(30);
        throw new CrossAppAccessError('down', { code: 'http_error', stage: 'token_exchange', status: 503 });
      };
      await expect(withRetry(slow, { retries: 5, baseDelayMs: 0, maxDelayMs: 1000, maxElapsedMs: 20 }, () => undefined)).rejects.toMatchObject({ status: 503 });
      expect(calls).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
