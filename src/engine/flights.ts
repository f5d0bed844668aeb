import { Liveness } from './liveness.js';
import type { StoredToken } from '../stores/token-store.js';

/** An acquisition under way: its result, and whether its waits hold the process. */
export interface Flight {
  readonly token: Promise<StoredToken>;
  readonly liveness: Liveness;
}

/**
 * One acquisition at a time per token key (cache key and user): any number of concurrent requests
 * share it, its result and its error. A flight is forgotten as soon as it settles.
 */
export class Flights {
  private readonly inflight = new Map<string, Flight>();

  /** The flight under `key`, starting one with `acquire` if none is under way. */
  obtain(key: string, acquire: (liveness: Liveness) => Promise<StoredToken>): Flight {
    const known = this.inflight.get(key);
    if (known) return known;
    const liveness = new Liveness();
    const flight: Flight = { token: acquire(liveness), liveness };
    const forget = () => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    };
    flight.token.then(forget, forget);
    this.inflight.set(key, flight);
    return flight;
  }

  /** True while an acquisition for `key` is under way. */
  has(key: string): boolean {
    return this.inflight.has(key);
  }

  /** Acquisitions under way (for tests of cleanup). */
  get size(): number {
    return this.inflight.size;
  }
}
