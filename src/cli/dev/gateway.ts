/**
 * `cross-app-access dev --idps N --servers M`: the shape of a whole gateway on loopback. N IdPs (one
 * per enterprise) and M MCP servers, each behind its own authorization server that registered the
 * gateway separately (its own client id and secret) and trusts every IdP. Each IdP writes, into an
 * ID-JAG, the client id registered at the ID-JAG's audience, so the mapping cannot disagree.
 */
import { randomBytes } from 'node:crypto';
import { startAuthorizationServer, type AsClient, type AuthorizationServer } from './servers/authorization-server.js';
import type { RequestLogEntry } from './servers/http-util.js';
import { startIdp, type Idp } from './servers/idp.js';
import { startMcpServer, type DevMcpServer } from './servers/mcp-server.js';
import { DEV_IDP_CLIENT_ID } from './start.js';

export interface DevGatewayOptions {
  idps: number;
  servers: number;
  /** IdPs on `port`…, then the authorization servers, then the MCP servers; 0 (default) for free ports. */
  port?: number;
  /**
   * Whether each authorization server's metadata names an `authorization_endpoint` (that nobody
   * calls): RFC 8414 §2 lets a jwt-bearer-only server leave it out, but the MCP SDK's client requires
   * it. Default false.
   */
  authorizationEndpoint?: boolean;
  /** Called once per answered request, with the server's name (`idp-1`, `as-2`, `mcp-2`). */
  onRequest?: (server: string, entry: RequestLogEntry) => void;
}

/** What a gateway needs to reach every dev server: printed as options, and as `XAA_GATEWAY` (JSON). */
export interface DevGatewayConfig {
  idps: Array<{ issuer: string; clientId: string; idTokenUrl: string }>;
  servers: Array<{ mcpUrl: string; asIssuer: string; clientId: string; clientSecret: string }>;
}

export interface DevGateway {
  idps: Idp[];
  authorizationServers: AuthorizationServer[];
  mcpServers: DevMcpServer[];
  config: DevGatewayConfig;
  close(): Promise<void>;
}

/** Starts N IdPs and M (authorization server, MCP server) pairs on 127.0.0.1. */
export async function startDevGateway(options: DevGatewayOptions): Promise<DevGateway> {
  const { idps: idpCount, servers: serverCount, port = 0 } = options;
  const listen = (name: string, offset: number) => ({
    port: port === 0 ? 0 : port + offset,
    ...(options.onRequest ? { onRequest: (entry: RequestLogEntry) => options.onRequest!(name, entry) } : {}),
  });
  const registrations: AsClient[] = Array.from({ length: serverCount }, (_, j) => ({
    clientId: `dev-mcp-client-${j + 1}`,
    clientSecret: randomBytes(32).toString('base64url'),
    method: 'client_secret_basic',
  }));
  const started: Array<{ close(): Promise<void> }> = [];
  try {
    const idps: Idp[] = [];
    for (let i = 0; i < idpCount; i++) {
      const idp = await startIdp({ clientId: DEV_IDP_CLIENT_ID, devIdTokenEndpoint: true, listen: listen(`idp-${i + 1}`, i) });
      started.push(idp);
      idps.push(idp);
    }
    const trustedIdp = idps.map(({ issuer, publicKey }) => ({ issuer, publicKey }));
    const authorizationServers: AuthorizationServer[] = [];
    const mcpServers: DevMcpServer[] = [];
    for (let j = 0; j < serverCount; j++) {
      const metadataOverrides: Record<string, unknown> = {};
      const as = await startAuthorizationServer({ clients: [registrations[j]!], trustedIdp, metadataOverrides, listen: listen(`as-${j + 1}`, idpCount + j) });
      if (options.authorizationEndpoint) metadataOverrides.authorization_endpoint = `${as.issuer}/authorize`;
      started.push(as);
      const mcp = await startMcpServer({ authorizationServer: as, listen: listen(`mcp-${j + 1}`, idpCount + serverCount + j) });
      started.push(mcp);
      as.allowedResources = [mcp.resource];
      authorizationServers.push(as);
      mcpServers.push(mcp);
    }
    for (const idp of idps) idp.jagClientId = (audience) => registrations[authorizationServers.findIndex((as) => as.issuer === audience)]?.clientId ?? 'unregistered';
    const config: DevGatewayConfig = {
      idps: idps.map((idp) => ({ issuer: idp.issuer, clientId: idp.clientId, idTokenUrl: `${idp.issuer}/dev/id-token` })),
      servers: mcpServers.map((mcp, j) => ({ mcpUrl: mcp.url, asIssuer: authorizationServers[j]!.issuer, clientId: registrations[j]!.clientId, clientSecret: registrations[j]!.clientSecret! })),
    };
    return { idps, authorizationServers, mcpServers, config, close: () => Promise.all(started.map((s) => s.close())).then(() => undefined) };
  } catch (error) {
    await Promise.all(started.map((s) => s.close()));
    throw error;
  }
}
