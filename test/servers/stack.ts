/**
 * Starts the whole Cross-App Access cast on loopback for the tests: IdP → AS (trusting the IdP) → MCP
 * server, the dev servers each wrapped with fault injection (test/servers/idp.ts, …).
 */
import { startIdp, type Idp, type IdpOptions } from './idp.js';
import {
  startAuthorizationServer,
  type AsClient,
  type AuthorizationServer,
  type AuthorizationServerOptions,
} from './authorization-server.js';
import { startMcpServer, type McpServerOptions, type McpTestServer } from './mcp-server.js';

/** The default client registered at the AS; the IdP writes its id into ID-JAGs. */
export const DEFAULT_AS_CLIENT: AsClient = {
  clientId: 'mcp-client',
  clientSecret: 'mcp-secret',
  method: 'client_secret_basic',
};

export interface StackOptions {
  /** Passed to {@link startIdp}. */
  idp?: IdpOptions;
  /** Passed to {@link startAuthorizationServer}; `trustedIdp` is filled in. Default client: {@link DEFAULT_AS_CLIENT}. */
  as?: Partial<Omit<AuthorizationServerOptions, 'trustedIdp'>>;
  /** Other IdPs (other enterprises), started by the caller, whose ID-JAGs the AS accepts too. */
  moreIdps?: readonly Idp[];
  /** Passed to {@link startMcpServer}; `authorizationServer` is filled in. */
  mcp?: Omit<McpServerOptions, 'authorizationServer'>;
  /**
   * When true (default) and `as.allowedResources` is not given, the AS accepts only ID-JAGs whose
   * `resource` is this MCP server's resource, like the conformance AS.
   */
  bindResource?: boolean;
}

export interface Stack {
  idp: Idp;
  as: AuthorizationServer;
  mcp: McpTestServer;
  /** Resets every server's counters and request logs. */
  reset(): void;
  /** Closes all three servers. */
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const idp = await startIdp(options.idp);
  const started: { close(): Promise<void> }[] = [idp];
  try {
    const as = await startAuthorizationServer({
      clients: [DEFAULT_AS_CLIENT],
      ...options.as,
      trustedIdp: [idp, ...(options.moreIdps ?? [])].map(({ issuer, publicKey }) => ({ issuer, publicKey })),
    });
    started.push(as);
    const mcp = await startMcpServer({ ...options.mcp, authorizationServer: as });
    started.push(mcp);
    if ((options.bindResource ?? true) && options.as?.allowedResources === undefined) {
      as.allowedResources = [mcp.resource];
    }
    return {
      idp,
      as,
      mcp,
      reset() {
        idp.reset();
        as.reset();
        mcp.reset();
      },
      close: async () => {
        await Promise.all([mcp.close(), as.close(), idp.close()]);
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close()));
    throw err;
  }
}
