// The dev authorization server (src/cli/dev/servers/authorization-server.ts, shipped for
// `cross-app-access dev`) with the tests' fault injection: `override` (a canned reply instead of the
// server's own), `revokeAll()` and `leaks()`.
import {
  startAuthorizationServer as startDevAuthorizationServer,
  type AccessTokenInfo,
  type AuthorizationServer as DevAuthorizationServer,
  type AuthorizationServerOptions,
} from '../../src/cli/dev/servers/authorization-server.js';
import { leaksOf, type OverrideHook } from './http-util.js';

export * from '../../src/cli/dev/servers/authorization-server.js';

export interface AuthorizationServer extends DevAuthorizationServer {
  /** Fault injection: a returned reply is sent instead of the normal one (counters still count). */
  override: OverrideHook | undefined;
  /** Revokes every access token issued so far. */
  revokeAll(): void;
  /** Header names that must never arrive (cookie, MCP headers, bearer), over all requests. */
  leaks(): string[];
}

export async function startAuthorizationServer(options: Omit<AuthorizationServerOptions, 'answerFirst' | 'tokens'>): Promise<AuthorizationServer> {
  const tokens = new Map<string, AccessTokenInfo>();
  let faulty: AuthorizationServer | undefined;
  const as = await startDevAuthorizationServer({ ...options, tokens, answerFirst: (req) => faulty?.override?.(req) });
  faulty = Object.assign(as, { override: undefined as OverrideHook | undefined, revokeAll: () => tokens.clear(), leaks: () => leaksOf(as) });
  return faulty;
}
