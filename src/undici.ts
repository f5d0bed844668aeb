/**
 * `cross-app-access/undici`: {@link crossAppAccessInterceptor}, an undici interceptor, for a
 * dispatcher of your own or undici's global dispatcher (so global `fetch` is signed in).
 *
 * @packageDocumentation
 * @module cross-app-access/undici
 */
// Public exports of `cross-app-access/undici`: the interceptor (undici is a peer dependency, imported
// only from this entry point, never from the core one).
export { crossAppAccessInterceptor } from './adapters/undici.js';
export type { InterceptorSession } from './adapters/undici.js';
