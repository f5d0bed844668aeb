/**
 * MCP Enterprise-Managed Authorization (Cross-App Access, ID-JAG) as a fetch wrapper: the user's ID
 * token is exchanged at the IdP for an ID-JAG, the ID-JAG at the MCP server's authorization server
 * for an access token, which is cached, renewed and retried. Start with {@link withCrossAppAccess}
 * (one user) or {@link CrossAppAccess} (many users).
 *
 * @packageDocumentation
 * @module cross-app-access
 */
// Public exports only. One-user wrappers:
export { withCrossAppAccess, crossAppAccess } from './adapters/fetch.js';
// The engine for many users (gateways), and where it keeps tokens:
export { CrossAppAccess } from './cross-app-access.js';
export type { AccessTokenRequest, AccessTokenResult, FetchSession, InvalidateRequest, UserSource } from './cross-app-access.js';
export type { AuthProviderSession, McpAuthProvider } from './auth-provider.js';
export { memoryTokenStore } from './stores/memory.js';
export type { SharedAcquisition, StoredDocument, StoredToken, TokenStore, TokenStoreHost } from './stores/token-store.js';
// Types of options, fetches and credentials:
export type { CompatibleFetch, CrossAppAccessFetch, CrossAppAccessMiddleware, FetchInit, FetchLike, ResponseLike } from './fetch-types.js';
export type { CrossAppAccessEngineOptions, CrossAppAccessOptions, IdpOptions, ClientOptions, IdTokenContext, IdTokenSource, IdTokenReason, UserIdTokenContext, UserIdTokenSource } from './options/types.js';
export type { WorkloadAssertionContext, WorkloadAssertionReason, WorkloadAssertionSource } from './options/workload-types.js';
export type { ClientAuthMethod, ClientCredentials } from './oauth/client-auth.js';
export type { CryptoKeyLike, JsonWebKeyLike, PrivateKeyInput, SigningAlg } from './oauth/client-assertion.js';
export type { DpopKeyOptions, DpopOption } from './oauth/dpop/key.js';
export type { SubjectTokenType } from './oauth/grants.js';
// Errors and events:
export { CrossAppAccessError, ConfigurationError, OAuthResponseError, crossAppAccessErrorOf, isCrossAppAccessError } from './errors.js';
export type { CrossAppAccessErrorCode, CrossAppAccessStage, CrossAppAccessErrorDetails } from './errors.js';
export type { CrossAppAccessEvent } from './events.js';
export { parseWwwAuthenticate } from './oauth/challenge.js';
// Declaring the Enterprise-Managed Authorization extension in an MCP client's capabilities:
export { declareEnterpriseManagedAuthorization, ENTERPRISE_MANAGED_AUTHORIZATION } from './extension.js';
export type { EnterpriseManagedAuthorizationDeclared, WithEnterpriseManagedAuthorization } from './extension.js';
export type { AuthChallenge } from './oauth/challenge.js';
