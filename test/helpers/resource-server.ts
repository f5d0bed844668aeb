/**
 * A minimal protected resource on loopback that verifies bearers with the test authorization server
 * and records every request body, for body-replay and lifecycle tests where the MCP SDK server would
 * hide what arrived. With `metadata`, it also serves its RFC 9728 protected-resource metadata and
 * names it in its 401s (`resource_metadata`, RFC 9728 §5.1), so a client can learn it (the fleet
 * bench: thousands of calls the MCP SDK server would be too slow for).
 */
import { createHash } from 'node:crypto';
import type { AuthorizationServer } from '../servers/authorization-server.js';
import type { IncomingMessage } from 'node:http';
import { sendJson, startHttpServer } from '../servers/http-util.js';

async function rawBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface RecordedBody {
  authorization: string | undefined;
  bytes: Buffer;
}

export interface ResourceServer {
  /** The resource identifier, also the URL to call. */
  readonly resource: string;
  readonly received: RecordedBody[];
  /** Mutable: return true to answer this token with 401 (after revoking it at the AS). */
  rejectToken: ((token: string) => boolean) | undefined;
  close(): Promise<void>;
}

export async function startResourceServer(as: AuthorizationServer, options: { metadata?: boolean } = {}): Promise<ResourceServer> {
  const received: RecordedBody[] = [];
  let resource = '';
  const server: ResourceServer = {
    get resource() {
      return resource;
    },
    received,
    rejectToken: undefined,
    close: () => started.close(),
  };
  const metadataPath = '/.well-known/oauth-protected-resource/mcp';
  const started = await startHttpServer(async (req, res) => {
    if (options.metadata && req.method === 'GET' && req.url === metadataPath) {
      sendJson(res, 200, { resource, authorization_servers: [as.issuer] });
      return;
    }
    const bytes = await rawBody(req);
    const authorization = req.headers.authorization;
    received.push({ authorization, bytes });
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    if (token && server.rejectToken?.(token)) as.revoke(token);
    const info = token ? as.verifyAccessToken(token) : undefined;
    if (!info || info.resource !== resource) {
      const challenge = options.metadata ? `Bearer error="invalid_token", resource_metadata="${started.url}${metadataPath}"` : 'Bearer error="invalid_token"';
      res.writeHead(401, { 'www-authenticate': challenge }).end('unauthorized');
      return;
    }
    sendJson(res, 200, { sub: info.sub, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  });
  resource = `${started.url}/mcp`;
  return server;
}
