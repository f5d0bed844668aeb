/**
 * The servers of `cross-app-access dev`, also started in-process by the examples' tests: a loopback
 * IdP, an authorization server trusting it, and a real MCP server (tools `whoami`, `echo`) trusting the
 * AS. One client record feeds both the IdP's mapping (the ID-JAG's `client_id`) and the AS's
 * registration, so the two cannot disagree.
 */
import { randomBytes } from 'node:crypto';
import { startAuthorizationServer, type AsClient, type AuthorizationServer } from './servers/authorization-server.js';
import type { RequestLogEntry } from './servers/http-util.js';
import { startIdp, type Idp } from './servers/idp.js';
import { startMcpServer, type DevMcpServer } from './servers/mcp-server.js';

/** The application's client id at the dev IdP: the ID token's `aud`. */
export const DEV_IDP_CLIENT_ID = 'dev-agent';
/** The application's client id at the dev AS: the ID-JAG's `client_id`. */
export const DEV_CLIENT_ID = 'dev-mcp-client';

/** Which of the three servers answered. */
export type DevServerName = 'idp' | 'as' | 'mcp';

export interface DevServerOptions {
  /** IdP on `port`, AS on `port + 1`, MCP server on `port + 2`; 0 (default) for free ports. */
  port?: number;
  /** The AS client's secret. Default: 32 random bytes, base64url. */
  clientSecret?: string;
  /** Called once per answered request (unredacted: see `formatRequest`). */
  onRequest?: (server: DevServerName, entry: RequestLogEntry) => void;
}

/** Everything a client needs to reach the dev MCP server. */
export interface DevConfig {
  /** The MCP endpoint, also the resource (RFC 8707). */
  mcpUrl: string;
  idpIssuer: string;
  idpClientId: string;
  /** `GET ?sub=<user>` answers `{ id_token, expires_in }`, to loopback callers only. */
  idTokenUrl: string;
  /** The AS the client is registered at. */
  asIssuer: string;
  clientId: string;
  clientSecret: string;
  authMethod: 'client_secret_basic';
}

/** The running dev servers. */
export interface DevServers {
  idp: Idp;
  as: AuthorizationServer;
  mcp: DevMcpServer;
  config: DevConfig;
  /** Stops all three and closes their connections. */
  close(): Promise<void>;
}

/** Starts the IdP, AS and MCP server on 127.0.0.1 with one consistent client mapping. */
export async function startDevServers(options: DevServerOptions = {}): Promise<DevServers> {
  const port = options.port ?? 0;
  const at = (offset: number) => (port === 0 ? 0 : port + offset);
  const listen = (name: DevServerName, offset: number) => ({
    port: at(offset),
    ...(options.onRequest ? { onRequest: (entry: RequestLogEntry) => options.onRequest!(name, entry) } : {}),
  });
  const client: AsClient = {
    clientId: DEV_CLIENT_ID,
    clientSecret: options.clientSecret ?? randomBytes(32).toString('base64url'),
    method: 'client_secret_basic',
  };
  const started: { close(): Promise<void> }[] = [];
  try {
    const idp = await startIdp({ clientId: DEV_IDP_CLIENT_ID, jagClientId: client.clientId, devIdTokenEndpoint: true, listen: listen('idp', 0) });
    started.push(idp);
    const as = await startAuthorizationServer({
      clients: [client],
      trustedIdp: { issuer: idp.issuer, publicKey: idp.publicKey },
      listen: listen('as', 1),
    });
    started.push(as);
    const mcp = await startMcpServer({ authorizationServer: as, listen: listen('mcp', 2) });
    started.push(mcp);
    // The AS redeems ID-JAGs for this MCP server only.
    as.allowedResources = [mcp.resource];
    const config: DevConfig = {
      mcpUrl: mcp.url,
      idpIssuer: idp.issuer,
      idpClientId: idp.clientId,
      idTokenUrl: `${idp.issuer}/dev/id-token`,
      asIssuer: as.issuer,
      clientId: client.clientId,
      clientSecret: client.clientSecret!,
      authMethod: 'client_secret_basic',
    };
    return { idp, as, mcp, config, close: () => Promise.all(started.map((s) => s.close())).then(() => undefined) };
  } catch (error) {
    await Promise.all(started.map((s) => s.close()));
    throw error;
  }
}
