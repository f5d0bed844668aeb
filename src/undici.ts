// Public exports of `cross-app-access/undici`: the interceptor (undici is a peer dependency, imported
// only from this entry point, never from the core one).
export { crossAppAccessInterceptor } from './adapters/undici.js';
export type { InterceptorSession } from './adapters/undici.js';
