import { LRUCache } from 'lru-cache';
import { Liveness } from './liveness.js';

/** A cached access token. ID-JAGs and ID tokens are never cached (MCP Enterprise-Managed Authorization §7.4.2). */
export interface AccessToken {
  readonly value: string;
  /** Epoch ms after which the token must not be sent. */
  readonly expiresAt: number;
  /** Epoch ms from which a new token is acquired in the background (expiry minus the renewal window). */
  readonly renewAt: number;
  /** Epoch ms when it was received. */
  readonly receivedAt: number;
  readonly scope: string | undefined;
  readonly fingerprint: string;
}

/** An acquisition under way: its result, and whether its waits hold the process. */
export interface Flight {
  readonly token: Promise<AccessToken>;
  readonly liveness: Liveness;
}

/**
 * Renew max(60 s, 10 % of the lifetime) before expiry, or the configured window, but
 * never more than half the lifetime before (a short-lived token would otherwise always be renewing).
 */
export function renewalWindowMs(lifetimeMs: number, configuredMs: number | undefined): number {
  return Math.min(configuredMs ?? Math.max(60_000, lifetimeMs / 10), lifetimeMs / 2);
}

/**
 * Access tokens by cache key, bounded by an LRU, with one acquisition at a time per key.
 * Invalidation compares the rejected token with the cached one first (generation check).
 */
export class TokenStore {
  // Made on first use: lru-cache allocates its arrays up front, and a gateway makes a wrapper per user.
  private lru: LRUCache<string, AccessToken> | undefined;
  private readonly inflight = new Map<string, Flight>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  private get tokens(): LRUCache<string, AccessToken> {
    return (this.lru ??= new LRUCache({ max: this.maxEntries }));
  }

  /** The cached token if it has not expired; no I/O, no allocation. */
  usable(key: string): AccessToken | undefined {
    const token = this.lru?.get(key);
    return token && this.now() < token.expiresAt ? token : undefined;
  }

  /** True while an acquisition for `flightKey` is under way. */
  inFlight(flightKey: string): boolean {
    return this.inflight.has(flightKey);
  }

  /** Acquisitions under way (for tests of cleanup). */
  get pending(): number {
    return this.inflight.size;
  }

  /**
   * The one acquisition in flight under `flightKey`, starting it if none is. Every waiter shares the
   * result or the error; a waiter holds the flight's `liveness` while it waits. `acquire` says which
   * key the token is stored under: the user is only known once the ID token has been read.
   */
  obtain(flightKey: string, acquire: (liveness: Liveness) => Promise<{ key: string; token: AccessToken }>): Flight {
    let flight = this.inflight.get(flightKey);
    if (!flight) {
      const liveness = new Liveness();
      const token = acquire(liveness).then(({ key, token }) => {
        this.tokens.set(key, token);
        return token;
      });
      const started: Flight = { token, liveness };
      const forget = () => {
        if (this.inflight.get(flightKey) === started) this.inflight.delete(flightKey);
      };
      token.then(forget, forget);
      this.inflight.set(flightKey, started);
      flight = started;
    }
    return flight;
  }

  /** Drops `token` if it is still the cached one; a straggler's stale token drops nothing. */
  invalidate(key: string, token: AccessToken): boolean {
    if (this.lru?.peek(key) !== token) return false;
    this.tokens.delete(key);
    return true;
  }

  /** Removes every cached token (user change). */
  clear(): void {
    this.lru?.clear();
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }
}
