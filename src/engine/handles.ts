import type { Engine } from './engine.js';

/**
 * The engine behind each public handle (a `CrossAppAccess`): an adapter handed one finds its engine
 * here, in the engine layer, never through the public class.
 */
const engines = new WeakMap<object, Engine>();

/** Registers `engine` as the one behind `handle` (the public class, when it is made). */
export function registerEngine(handle: object, engine: Engine): void {
  engines.set(handle, engine);
}

/** The engine behind `handle`, or undefined when it is not a handle of this package. */
export function engineBehind(handle: unknown): Engine | undefined {
  return typeof handle === 'object' && handle !== null ? engines.get(handle) : undefined;
}
