export { withCrossAppAccess, crossAppAccess } from './middleware.js';
export type { CrossAppAccessFetch, CrossAppAccessMiddleware, FetchLike } from './middleware.js';
export type { CrossAppAccessOptions, IdpOptions, ClientOptions, IdTokenSource, IdTokenReason } from './options.js';
export type { ClientAuthMethod } from './client-auth.js';
export { CrossAppAccessError, ConfigurationError, OAuthResponseError } from './errors.js';
export type { CrossAppAccessErrorCode, CrossAppAccessStage, CrossAppAccessErrorDetails } from './errors.js';
export type { CrossAppAccessEvent } from './events.js';
export { parseWwwAuthenticate } from './challenge.js';
export type { AuthChallenge } from './challenge.js';
