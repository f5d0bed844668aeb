import { LRUCache } from 'lru-cache';

/**
 * A bounded map, least recently used dropped first (lru-cache), built on first write: lru-cache
 * allocates its arrays for `max` entries up front, which would make every wrapper, engine and store
 * slow to build although most never hold more than a few entries. The one way this package keeps a
 * bounded map.
 *
 * @example
 * const recent = new LazyLru<string, number>({ max: 1000 });
 * recent.built?.get('a'); // undefined: nothing built, nothing allocated
 * recent.cache.set('a', 1); // built now
 */
export class LazyLru<K extends {}, V extends {}> {
  #built: LRUCache<K, V> | undefined;

  constructor(private readonly options: LRUCache.Options<K, V, unknown>) {}

  /** The cache, built now if it was not yet: for writes (and reads that follow one). */
  get cache(): LRUCache<K, V> {
    return (this.#built ??= new LRUCache<K, V>(this.options));
  }

  /** The cache if it was built: for reads and deletions, which need no cache when nothing was written. */
  get built(): LRUCache<K, V> | undefined {
    return this.#built;
  }
}
