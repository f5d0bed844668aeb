/**
 * A minimal protected resource on loopback that verifies bearers with the test authorization server
 * and records every request body, for body-replay and lifecycle tests where the MCP SDK server would
 * hide what arrived.
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

export async function startResourceServer(as: AuthorizationServer): Promise<ResourceServer> {
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
  const started = await startHttpServer(async (req, res) => {
    const bytes = await rawBody(req);
    const authorization = req.headers.authorization;
    received.push({ authorization, bytes });
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    if (token && server.rejectToken?.(token)) as.revoke(token);
    const info = token ? as.verifyAccessToken(token) : undefined;
    if (!info || info.resource !== resource) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end('unauthorized');
      return;
    }
    sendJson(res, 200, { sub: info.sub, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  });
  resource = `${started.url}/mcp`;
  return server;
}
