/**
 * Process-wide counters of the warm path, for metrics (`cross-app-access/otel` reads them when
 * asked): incrementing an integer is all the warm path pays. Kept under a registry-wide symbol, so
 * the ESM and CommonJS builds, and every entry point's bundle, count in the same place.
 */
export interface WarmPathStats {
  /** Requests served with a token held in this process (no I/O). */
  hits: number;
  /** Token lookups that found no usable token here (an acquisition, or the fleet's store, follows). */
  misses: number;
}

const KEY = Symbol.for('cross-app-access.warm-path-stats');

/** The counters, made on first use. */
export function warmPathStats(): WarmPathStats {
  const holder = globalThis as { [KEY]?: WarmPathStats };
  return (holder[KEY] ??= { hits: 0, misses: 0 });
}
