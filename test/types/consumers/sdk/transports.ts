// The wrapped fetch in both MCP SDKs' transports, the middleware in both SDKs' applyMiddlewares, and
// the SDKs' own FetchLike as the fetch that is wrapped.
import { applyMiddlewares as applyV1, withLogging as withLoggingV1, type Middleware as MiddlewareV1 } from '@modelcontextprotocol/sdk/client/middleware.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike as FetchLikeV1 } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  StreamableHTTPClientTransport as TransportV2,
  applyMiddlewares as applyV2,
  withLogging as withLoggingV2,
  type FetchLike as FetchLikeV2,
  type Middleware as MiddlewareV2,
} from '@modelcontextprotocol/client';
import { fetch as undiciFetch } from 'undici';
import { crossAppAccess, withCrossAppAccess, type CrossAppAccessOptions } from 'cross-app-access';

declare const options: CrossAppAccessOptions;
const url = new URL('https://mcp.tools.example/team-a/mcp');

for (const authedFetch of [withCrossAppAccess(fetch, options), withCrossAppAccess(undiciFetch, options)]) {
  new TransportV1(url, { fetch: authedFetch });
  new TransportV2(url, { fetch: authedFetch });
}

export const middlewareV1: MiddlewareV1 = crossAppAccess(options);
export const middlewareV2: MiddlewareV2 = crossAppAccess(options);
new TransportV1(url, { fetch: applyV1(withLoggingV1(), crossAppAccess(options))(fetch) });
new TransportV2(url, { fetch: applyV2(withLoggingV2(), crossAppAccess(options))(fetch) });
// The SDKs' applyMiddlewares take only their own FetchLike, which undici's fetch is not: wrap it first.
new TransportV1(url, { fetch: applyV1(withLoggingV1())(withCrossAppAccess(undiciFetch, options)) });

declare const sdkFetchV1: FetchLikeV1;
declare const sdkFetchV2: FetchLikeV2;
new TransportV1(url, { fetch: withCrossAppAccess(sdkFetchV1, options) });
new TransportV2(url, { fetch: withCrossAppAccess(sdkFetchV2, options) });
