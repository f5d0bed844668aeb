import { LazyLru } from '../lazy-lru.js';
import { DEFAULTS } from '../options/defaults.js';

// After a failed background renewal, the still-valid token is served and renewal waits this long.
const RENEWAL_RETRY_MS = DEFAULTS.renewalRetryMs;
// Failed renewals remembered (to pause their retries), at most.
const MAX_RENEWAL_PAUSES = DEFAULTS.maxRenewalPauses;

/**
 * Token keys whose background renewal failed, and until when it is not tried again: the
 * still-valid token keeps being served meanwhile. Bounded; the least recently used pauses go first (they only
 * save requests).
 */
export class RenewalPauses {
  private readonly until = new LazyLru<string, number>({ max: MAX_RENEWAL_PAUSES });

  constructor(private readonly now: () => number) {}

  /** True while `key`'s pause lasts; a pause that has passed is forgotten here. */
  paused(key: string): boolean {
    const until = this.until.built?.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.built?.delete(key);
    return false;
  }

  /** Pauses renewal for `key`. */
  pause(key: string): void {
    this.until.cache.set(key, this.now() + RENEWAL_RETRY_MS);
  }

  /** A renewal of `key` succeeded. */
  clear(key: string): void {
    this.until.built?.delete(key);
  }

  /** Pauses held (for tests of cleanup). */
  get size(): number {
    return this.until.built?.size ?? 0;
  }

  /** Sign-out: every pause of the user's tokens (keys end with NUL, `u` or `n`, and the user key) goes. */
  forgetUser(userKey: string): void {
    const unnamed = `\u0000u${userKey}`;
    const named = `\u0000n${userKey}`;
    const until = this.until.built;
    if (!until) return;
    for (const key of [...until.keys()]) if (key.endsWith(unnamed) || key.endsWith(named)) until.delete(key);
  }
}
