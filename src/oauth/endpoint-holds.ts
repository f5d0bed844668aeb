import { CrossAppAccessError, capitalize, type CrossAppAccessStage } from '../errors.js';
import { LazyLru } from '../lazy-lru.js';
import { reportedUrl } from '../url-rules.js';
import { DEFAULTS } from '../options/defaults.js';

/** Endpoints remembered at most; the least recently used hold is dropped first (it only saves requests). */
const MAX_HELD_ENDPOINTS = DEFAULTS.maxHeldEndpoints;
/** A server's `Retry-After` is honoured for at most this long: past it, one request tries again. */
const MAX_HOLD_MS = DEFAULTS.maxEndpointHoldMs;

/**
 * Token and metadata endpoints that answered 429 or 503 with `Retry-After` (RFC 6585 §4, RFC 9110
 * §15.6.4, §10.2.3): until then, nobody sharing the engine sends them another request. A request
 * held back fails at once with a transient error carrying the remaining `retryAfter`, so the
 * acquisition's own retry policy waits for it within its deadline, or gives up with it.
 */
export class EndpointHolds {
  private readonly holds = new LazyLru<string, { readonly until: number; readonly status: number }>({ max: MAX_HELD_ENDPOINTS });

  /** Throws the held-back error if `url` asked callers to wait and the wait is not over. */
  check(url: string, what: string, stage: CrossAppAccessStage): void {
    const hold = this.holds.built?.get(url);
    if (!hold) return;
    const waitMs = hold.until - Date.now();
    if (waitMs <= 0) {
      this.holds.built?.delete(url);
      return;
    }
    throw new CrossAppAccessError(
      `${capitalize(what)} at ${reportedUrl(url)} answered HTTP ${hold.status} with Retry-After; this request was held back for ${Math.ceil(waitMs / 1000)} s more, and not sent.`,
      { code: 'http_error', stage, status: hold.status, retryAfter: waitMs / 1000 },
    );
  }

  /** Remembers a 429 or 503 answer's `Retry-After` (milliseconds from now) for `url`. */
  note(url: string, status: number, retryAfterMs: number | undefined): void {
    if ((status !== 429 && status !== 503) || retryAfterMs === undefined || retryAfterMs <= 0) return;
    this.holds.cache.set(url, { until: Date.now() + Math.min(retryAfterMs, MAX_HOLD_MS), status });
  }
}
