// undici 7's fetch fits the wrapper and the middleware, though its RequestInit and Response are not
// the platform's (neither fits the other's declarations).
import { fetch as undiciFetch } from 'undici';
import { crossAppAccess, withCrossAppAccess, type CompatibleFetch, type CrossAppAccessOptions } from 'cross-app-access';

declare const options: CrossAppAccessOptions;

const authedFetch = withCrossAppAccess(undiciFetch, options);
const viaMiddleware = crossAppAccess(options)(undiciFetch);

// What comes back is the platform's fetch, whichever fetch it wraps.
export const asGlobal: typeof fetch = authedFetch;
export const alsoAsGlobal: typeof fetch = viaMiddleware;

// A fetch of one's own on top of undici's, typed by the package.
const logging: CompatibleFetch = (url, init) => {
  console.log(init?.method ?? 'GET', url);
  return undiciFetch(url, init);
};
export const logged = withCrossAppAccess(logging, options);
