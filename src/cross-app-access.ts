import { credentialOf, type DpopCredential } from './engine/credential.js';
import { untilAborted } from './abort.js';
import { fetchAdapter } from './adapters/fetch.js';
import { ConfigurationError, CrossAppAccessError } from './errors.js';
import type { CompatibleFetch, CrossAppAccessFetch, FetchLike } from './fetch-types.js';
import type { ResourceBinding } from './engine/binding.js';
import { resolveEngineOptions } from './options/resolve.js';
import type { CrossAppAccessEngineOptions, UserIdTokenSource } from './options/types.js';
import { describeUrl, isInside, parseUrl } from './url-rules.js';
import { Engine, targetAt, type Session, type Target } from './engine/engine.js';
import { engineBehind, registerEngine } from './engine/handles.js';
import { readerOf, requireUser, sessionResolver, type FetchSession } from './engine/sessions.js';
import { authProviderOf, type AuthProviderSession, type McpAuthProvider } from './auth-provider.js';

export type { FetchSession, UserSource } from './engine/sessions.js';

/**
 * Which token {@link CrossAppAccess.getAccessToken} returns: for whom, and for which URL or resource.
 *
 * @example
 * ```ts
 * const request: AccessTokenRequest = { user: 'alice', idToken, url: 'https://mcp.example.com/mcp' };
 * ```
 */
export interface AccessTokenRequest {
  /** The application's user key. */
  user: string;
  /** The user's ID token, or a function called (with `{ user, reason, signal }`) when a new access token is needed; none with an engine's `assertion`. */
  idToken?: string | UserIdTokenSource | undefined;
  /** A URL the token is for (inside the resource). Give this or `resource`. */
  url?: string | URL | undefined;
  /** The resource identifier, exactly as its metadata writes it. Give this or `url`. */
  resource?: string | undefined;
  /** Aborts this caller's wait (never an acquisition others share). */
  signal?: AbortSignal | undefined;
  /** With several IdPs: the issuer of the user's IdP, as {@link FetchSession.idp}. */
  idp?: string | undefined;
}

/**
 * An access token from {@link CrossAppAccess.getAccessToken}: send it as `Authorization: Bearer`
 * to URLs inside `resource` only.
 *
 * @example
 * ```ts
 * const { token, resource } = await xaa.getAccessToken({ user, idToken, url });
 * socket.send(JSON.stringify({ authorization: `Bearer ${token}` }));
 * ```
 */
export interface AccessTokenResult {
  /** The access token: send it as `Authorization: Bearer <token>`, or for `tokenType` `'DPoP'` as `Authorization: DPoP <token>` with a proof. */
  token: string;
  /** `'DPoP'` for a token bound to the engine's `dpop` key (RFC 9449 §5), else `'Bearer'`. */
  tokenType: 'Bearer' | 'DPoP';
  /**
   * For a DPoP token: a new proof for one request (its method and URL; RFC 9449 §4.2, §7), to send as
   * the `DPoP` header beside `Authorization: DPoP <token>`. A new one for every request; a URL outside
   * the token's resource gets none (`invalid_option`).
   */
  dpopProof?: ((method: string, url: string | URL) => Promise<string>) | undefined;
  /** Epoch ms after which it must not be sent. */
  expiresAt: number;
  /** The scope granted, when known. */
  scope: string | undefined;
  /** The resource it is for: same origin, path at or below. */
  resource: string;
}

/**
 * Which token to drop: {@link CrossAppAccess.invalidate}, for a caller that saw a 401 for it.
 *
 * @example
 * ```ts
 * xaa.invalidate({ user: 'alice', token, url: 'https://mcp.example.com/mcp' });
 * ```
 */
export interface InvalidateRequest {
  /** The application's user key the token was issued for. */
  user: string;
  /** The token the server refused: only that one is dropped (a newer one stays). */
  token: string;
  /** A URL the token was sent to (inside the resource). Give this or `resource`. */
  url?: string | URL | undefined;
  /** The resource identifier the token is for, exactly as its metadata writes it. Give this or `url`. */
  resource?: string | undefined;
  /** With several IdPs: the issuer of the user's IdP, as {@link FetchSession.idp}. */
  idp?: string | undefined;
}

/**
 * One engine per client registration (an IdP client and an authorization-server client): discovery,
 * metadata, the credential binding and the token store are shared by every user and every adapter.
 * Each user's tokens are their own: the user key is part of every cache key, and a request whose
 * user is unknown fails closed.
 *
 * @example
 * ```ts
 * import { AsyncLocalStorage } from 'node:async_hooks';
 * import { CrossAppAccess } from 'cross-app-access';
 *
 * const requestContext = new AsyncLocalStorage<{ userId: string }>();
 * const xaa = new CrossAppAccess({ idp, client, resource: 'https://mcp.example.com/mcp' });
 * const gatewayFetch = xaa.fetch(fetch, {
 *   user: () => requestContext.getStore()?.userId,
 *   idToken: ({ user, reason }) => sessions.idTokenFor(user, { forceRefresh: reason !== 'initial' }),
 * });
 * ```
 * @see https://github.com/modelcontextprotocol/ext-auth/blob/main/specification/stable/enterprise-managed-authorization.mdx MCP Enterprise-Managed Authorization (stable)
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-identity-assertion-authz-grant-04.html draft-ietf-oauth-identity-assertion-authz-grant-04 (ID-JAG)
 */
export class CrossAppAccess {
  /**
   * Validates the options once (a bad one throws a {@link ConfigurationError}). The engine takes the
   * same options as {@link withCrossAppAccess} except `idToken` (each session brings its own), plus
   * `store`. Metadata and token requests go through `oauthFetch` (default: the global `fetch`).
   */
  constructor(options: CrossAppAccessEngineOptions) {
    const resolved = resolveEngineOptions(options);
    // Without oauthFetch, the engine sends its metadata and token requests through the global fetch.
    registerEngine(this, new Engine(resolved, resolved.oauthFetch));
  }

  /**
   * A fetch for one user (`user: 'alice'`) or for whoever each request belongs to (`user: () => …`,
   * called on every request). Requests outside protected resources pass through untouched; a request
   * to one with no user fails closed with `unknown_user` and is never sent.
   *
   * @example
   * ```ts
   * const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: () => aliceSession.idToken() });
   * const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: aliceFetch });
   * ```
   */
  fetch(next: CompatibleFetch, session: FetchSession): CrossAppAccessFetch {
    if (typeof next !== 'function') throw new TypeError('CrossAppAccess.fetch: the first argument must be a fetch function.');
    const engine = engineOf(this);
    // Any WHATWG fetch takes the platform's RequestInit at run time, whatever its declarations say.
    return fetchAdapter(engine, next as FetchLike, sessionResolver(engine, session));
  }

  /**
   * An access token for a user and a URL (or resource), for callers that are not fetch (websocket
   * upgrades, another HTTP client). The same cache, single-flight and renewal as the fetch adapters;
   * after a 401 call {@link invalidate} with the refused token.
   *
   * @example
   * ```ts
   * const { token } = await xaa.getAccessToken({ user: 'alice', idToken, url: 'https://mcp.example.com/mcp' });
   * ```
   */
  async getAccessToken(request: AccessTokenRequest): Promise<AccessTokenResult> {
    const engine = engineOf(this);
    request = requireArgument(request, 'getAccessToken');
    const session = engine.session(requireUser(request.user), readerOf(request.idToken, 'getAccessToken', engine.options.assertion !== undefined), typeof request.idToken === 'string', request.idp);
    const binding = await untilAborted(bindingFor(engine, session, request), request.signal);
    const token = await engine.tokenFor(binding, session, request.signal);
    const credential = credentialOf(token, engine.dpop);
    const dpop = typeof credential === 'string' ? {} : { dpopProof: (method: string, url: string | URL) => proofInside(credential, binding, method, url) };
    return { token: token.value, tokenType: token.tokenType ?? 'Bearer', ...dpop, expiresAt: token.expiresAt, scope: token.scope, resource: binding.resource };
  }

  /**
   * Drops a token a server refused (a 401), if it is still the stored one, so the next request or
   * {@link getAccessToken} acquires a new one. A token already replaced is left alone. Returns
   * whether it was dropped.
   *
   * @example
   * ```ts
   * if (response.status === 401) xaa.invalidate({ user: 'alice', token, url });
   * ```
   */
  invalidate(request: InvalidateRequest): boolean {
    const engine = engineOf(this);
    request = requireArgument(request, 'invalidate');
    const user = requireUser(request.user);
    if (typeof request.token !== 'string') throw new ConfigurationError('token', 'is required by invalidate: the access token the server refused');
    const binding = knownBinding(engine, request);
    return binding !== undefined && engine.invalidate(binding, user, request.idp, request.token);
  }

  /**
   * An MCP SDK v2 `AuthProvider` (`{ token, onUnauthorized }`) for one server: for the v2 SDK's
   * transports (`authProvider` option), Mastra, and Cloudflare Agents' `createMcpOAuthProvider()`.
   * `token()` is {@link getAccessToken} (cache, single-flight, renewal); `onUnauthorized()` drops the
   * token the server refused so the transport's one retry gets a new one. Unlike {@link fetch}, it
   * cannot step up on a 403 `insufficient_scope` nor replay a body: the transport owns the request.
   * For the v1 SDK, the AI SDK and LangChain, use {@link fetch} (their `OAuthClientProvider`
   * insists on its own token request after a 401).
   *
   * @example
   * ```ts
   * import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
   * const authProvider = xaa.authProvider({ user: 'alice', idToken: () => sso.idToken(), url: mcpUrl });
   * await new Client({ name: 'agent', version: '1.0.0' }).connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider }));
   * ```
   */
  authProvider(session: AuthProviderSession): McpAuthProvider {
    const workload = engineOf(this).options.assertion !== undefined;
    return authProviderOf(this, requireArgument(session, 'authProvider'), workload);
  }

  /**
   * Sign-out: drops every token of `user` (in the shared store too), forgets the identity its ID
   * tokens named, and keeps nothing that an acquisition under way for it brings back.
   *
   * @example
   * ```ts
   * app.post('/logout', async (req, res) => { await xaa.forget(req.session.userId); res.end(); });
   * ```
   */
  async forget(user: string): Promise<void> {
    const engine = engineOf(this);
    await engine.forget(requireUser(user));
  }
}

/** A proof for a request inside the token's resource only (RFC 9449 §7): none goes where the token may not. */
async function proofInside(credential: DpopCredential, binding: ResourceBinding, method: string, url: string | URL): Promise<string> {
  const target = parseUrl(String(url));
  if (!target || !isInside(target.origin, target.pathname, binding.boundary)) {
    throw new CrossAppAccessError(`No DPoP proof is made for ${target ? describeUrl(target) : 'that URL'}: it is outside the resource ${binding.resource} the token is for.`, { code: 'invalid_option', stage: 'request' });
  }
  return credential.proof(method, target.href);
}

/** The target of a URL or resource a token is asked for, refused where a token may not go. */
function targetOf(engine: Engine, request: { url?: string | URL | undefined; resource?: string | undefined }): Target {
  const href = request.url !== undefined ? String(request.url) : request.resource;
  const url = href === undefined ? undefined : parseUrl(href);
  if (!url) throw new ConfigurationError(request.url !== undefined ? 'url' : 'resource', 'expected an absolute URL (give url or resource)');
  const target = targetAt(url);
  if (!engine.mayCarryToken(target)) {
    const configured = engine.options.resources.map((r) => r.resource);
    const why = configured.length > 0 ? `it is outside the configured resource ${configured.join(', ')}` : 'it is not https (nor loopback), or has credentials in it';
    throw new CrossAppAccessError(`No token is given for ${describeUrl(url)}: ${why}.`, { code: 'invalid_option', stage: 'request' });
  }
  return target;
}

/** A learned or configured binding for the request's URL or resource, without I/O. */
function knownBinding(engine: Engine, request: { url?: string | URL | undefined; resource?: string | undefined }): ResourceBinding | undefined {
  const binding = engine.find(targetOf(engine, request));
  return binding && (request.resource === undefined || binding.resource === request.resource) ? binding : undefined;
}

/**
 * The binding for a URL or resource: learned or configured, else discovered from the server's
 * RFC 9728 metadata at its well-known URL (there is no 401 to learn from here).
 */
async function bindingFor(engine: Engine, session: Session, request: AccessTokenRequest): Promise<ResourceBinding> {
  return knownBinding(engine, request) ?? engine.bindingAt(targetOf(engine, request), session, request.resource, request.signal);
}

/** A call's argument object; anything else is a {@link ConfigurationError} naming the call (nothing is sent). */
function requireArgument<T>(value: T, call: string): T {
  if (typeof value !== 'object' || value === null) throw new ConfigurationError(call, 'expected an object argument');
  return value;
}

/** The engine behind a {@link CrossAppAccess}. */
function engineOf(xaa: CrossAppAccess): Engine {
  const engine = engineBehind(xaa);
  if (!engine) throw new TypeError('Expected a CrossAppAccess instance.');
  return engine;
}
