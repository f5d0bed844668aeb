import type { AccessTokenRequest, CrossAppAccess } from './cross-app-access.js';
import type { UserSource } from './engine/sessions.js';
import { ConfigurationError, CrossAppAccessError } from './errors.js';
import { LazyLru } from './lazy-lru.js';
import type { UserIdTokenSource } from './options/types.js';
import { DEFAULTS } from './options/defaults.js';

/**
 * The MCP SDK v2 `AuthProvider` shape (`@modelcontextprotocol/client`): what its transports, Mastra
 * and Cloudflare's `Agent.createMcpOAuthProvider()` take to authenticate an MCP connection.
 *
 * @example
 * ```ts
 * const provider: McpAuthProvider = xaa.authProvider({ user: 'alice', idToken, url: mcpUrl });
 * ```
 */
export interface McpAuthProvider {
  /** The access token for this connection's user and server (cached, single-flight, renewed ahead of expiry). */
  token(): Promise<string>;
  /** The server answered 401: the token it refused is dropped, so the transport's retry gets a new one. */
  onUnauthorized(context: { response: Response; serverUrl?: URL }): Promise<void>;
}

/**
 * Whose tokens an {@link McpAuthProvider} hands out, and for which server.
 *
 * @example
 * ```ts
 * const session: AuthProviderSession = { user: () => ctx.getStore()?.userId, idToken, url: 'https://mcp.example.com/mcp' };
 * ```
 */
export interface AuthProviderSession {
  /** A fixed user key, or a function read on every `token()` call (AsyncLocalStorage…); no user fails closed. */
  user: UserSource;
  /** The user's ID token, or a function called (with `{ user, reason, signal }`) when a new access token is needed; none with an engine's `assertion`. */
  idToken?: string | UserIdTokenSource | undefined;
  /** With several IdPs: the issuer of the user's IdP, fixed or read with the user. */
  idp?: string | (() => string | undefined) | undefined;
  /** The MCP server's URL (or any URL inside its resource). */
  url: string | URL;
}

/** Users whose last token is remembered (to drop the one a 401 refused), at most. */
const MAX_REMEMBERED = DEFAULTS.maxAuthProviderUsers;

/**
 * An MCP SDK v2 `AuthProvider` over an engine ({@link CrossAppAccess.authProvider}): `token()` is
 * {@link CrossAppAccess.getAccessToken}, `onUnauthorized()` drops the token the server refused
 * ({@link CrossAppAccess.invalidate}).
 */
export function authProviderOf(xaa: CrossAppAccess, session: AuthProviderSession, workload = false): McpAuthProvider {
  const { user, idToken, idp, url } = session;
  // Mistakes in the session are told now, when the provider is made, not at the transport's first token().
  if (typeof user !== 'string' && typeof user !== 'function') throw new ConfigurationError('user', 'is required by authProvider: a user key, or a function returning the current one');
  // A workload engine (the assertion option) reads its platform JWT itself: no ID token is given.
  if (workload && idToken !== undefined) throw new ConfigurationError('idToken', 'is not taken by authProvider on an engine with the assertion option (workload identity): leave it out');
  if (!workload && typeof idToken !== 'function' && (typeof idToken !== 'string' || idToken === '')) throw new ConfigurationError('idToken', "is required by authProvider: the user's ID token, or a function returning it");
  if (typeof url !== 'string' && !(url instanceof URL)) throw new ConfigurationError('url', "is required by authProvider: the MCP server's URL");
  const last = new LazyLru<string, string>({ max: MAX_REMEMBERED });
  const request = (): AccessTokenRequest => {
    const key = typeof user === 'function' ? user() : user;
    if (typeof key !== 'string' || key === '') {
      throw new CrossAppAccessError('No user could be resolved for an MCP connection; no token was given. The user option must name the signed-in user of every request (e.g. from AsyncLocalStorage).', {
        code: 'unknown_user',
        stage: 'request',
      });
    }
    const issuer = typeof idp === 'function' ? idp() : idp;
    return { user: key, idToken, url, ...(issuer === undefined ? {} : { idp: issuer }) };
  };
  return {
    async token() {
      const asked = request();
      const { token, tokenType } = await xaa.getAccessToken(asked);
      // The SDK sends what token() returns as Bearer: a DPoP-bound token must never go that way (RFC 9449 §7.1).
      if (tokenType === 'DPoP') {
        throw new CrossAppAccessError('The access token is DPoP-bound (the dpop option), and an MCP SDK authProvider sends tokens as Bearer; it was not given. Use xaa.fetch(...) as the transport\'s fetch instead.', {
          code: 'dpop_unsupported',
          stage: 'request',
        });
      }
      last.cache.set(asked.user, token);
      return token;
    },
    async onUnauthorized() {
      const asked = request();
      const refused = last.built?.get(asked.user);
      if (refused !== undefined) xaa.invalidate({ user: asked.user, token: refused, url, ...(asked.idp === undefined ? {} : { idp: asked.idp }) });
    },
  };
}
