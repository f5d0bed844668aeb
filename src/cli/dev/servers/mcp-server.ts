/**
 * Loopback MCP server (the protected resource): a real `@modelcontextprotocol/sdk` v1 server over
 * Streamable HTTP (stateless, JSON responses), guarded by RFC 6750 bearer checks against the
 * fixture AS, with RFC 9728 Protected Resource Metadata.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import * as z from 'zod';
import {
  headersOf,
  noteRequest,
  pathnameOf,
  readBody,
  sendJson,
  sendOverride,
  sendText,
  startHttpServer,
  type ListenOptions,
  type OverrideHook,
} from './http-util.js';
import type { AccessTokenInfo } from './authorization-server.js';

/** Where the PRM is served (RFC 9728 §3.1). */
export type PrmMode = 'path' | 'root' | 'header-only';

export interface McpServerOptions {
  /** The AS whose tokens this server accepts (only `issuer` and `verifyAccessToken` are used). */
  authorizationServer: {
    readonly issuer: string;
    verifyAccessToken(token: string): AccessTokenInfo | undefined;
  };
  /** MCP endpoint path. Default `/mcp`. */
  path?: string;
  /**
   * `path`: `/.well-known/oauth-protected-resource<path>` (default); `root`:
   * `/.well-known/oauth-protected-resource`; `header-only`: `/meta/prm`, found only via the
   * challenge's `resource_metadata`.
   */
  prm?: PrmMode;
  /** Replaces `resource` in the PRM (mismatch tests). */
  resourceOverride?: string;
  /** PRM `scopes_supported`. */
  scopesSupported?: string[];
  /** Scopes every request needs; a token lacking one gets 403 `insufficient_scope` (RFC 6750 §3.1). */
  requiredScopes?: string[];
  /** `scope` to put in 401 challenges (MCP-AUTHZ "Scope Selection Strategy"). Default: none. */
  challengeScope?: string;
  /**
   * `resource_metadata` in challenges: default the served PRM URL; a string replaces it (e.g. a
   * non-https URL); `false` omits it (clients must fall back to well-known URLs). Ignored in
   * `header-only` mode unless a string.
   */
  challengeResourceMetadata?: string | false;
  /** Merged into the PRM document (e.g. `authorization_servers`). */
  prmOverrides?: Record<string, unknown>;
  /** Port and request log. Default: a free port, no log. */
  listen?: ListenOptions;
  /** See {@link OverrideHook}. Default: none. */
  answerFirst?: OverrideHook;
}

export interface McpRecordedRequest {
  path: string;
  method: string;
  /** The raw `Authorization` header, if any. */
  authorization?: string;
  /** JSON-RPC method(s) of a POST to the MCP endpoint (comma-joined for batches). */
  rpcMethod?: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A running MCP server of `cross-app-access dev` (the tests wrap it with fault injection: test/servers/mcp-server.ts). */
export interface DevMcpServer {
  /** The MCP endpoint, e.g. `http://127.0.0.1:PORT/mcp`. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** This server's resource identifier: `${origin}${path}`. */
  readonly resource: string;
  /** Where the PRM is served. */
  readonly prmUrl: string;
  readonly counters: { requests: number; authorized: number; unauthorized: number; forbidden: number; prm: number };
  /** Every request received (any path), in order. */
  readonly requests: McpRecordedRequest[];
  /** Mutable: see {@link McpServerOptions.requiredScopes}. */
  requiredScopes: string[] | undefined;
  /** Zeroes counters and clears `requests`. */
  reset(): void;
  close(): Promise<void>;
}

/** RFC 9110 §5.6.4 quoted-string. */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A fresh MCP server per request (stateless mode), with the test tools. */
function buildMcpServer(): McpServer {
  const server = new McpServer({ name: 'xaa-test-mcp', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who the bearer token belongs to' }, (extra) => {
    const auth = extra.authInfo;
    const sub = typeof auth?.extra?.sub === 'string' ? auth.extra.sub : '';
    const idp = typeof auth?.extra?.idp === 'string' ? ` idp=${auth.extra.idp}` : '';
    return { content: [{ type: 'text', text: `sub=${sub} scopes=${(auth?.scopes ?? []).join(' ')}${idp}` }] };
  });
  server.registerTool(
    'echo',
    { description: 'Echoes its input', inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

export async function startMcpServer(options: McpServerOptions): Promise<DevMcpServer> {
  const as = options.authorizationServer;
  const mcpPath = options.path ?? '/mcp';
  const prmMode = options.prm ?? 'path';
  const prmPath =
    prmMode === 'path'
      ? `/.well-known/oauth-protected-resource${mcpPath === '/' ? '' : mcpPath}`
      : prmMode === 'root'
        ? '/.well-known/oauth-protected-resource'
        : '/meta/prm';

  const mcp: DevMcpServer = {
    url: '',
    origin: '',
    resource: '',
    prmUrl: '',
    counters: { requests: 0, authorized: 0, unauthorized: 0, forbidden: 0, prm: 0 },
    requests: [],
    requiredScopes: options.requiredScopes,
    reset() {
      for (const k of Object.keys(mcp.counters) as (keyof DevMcpServer['counters'])[]) mcp.counters[k] = 0;
      mcp.requests.length = 0;
    },
    close: async () => {},
  };

  /** RFC 6750 §3 + RFC 9728 §5.1 challenge. */
  function challenge(params: { error?: string; description?: string; scope?: string }): string {
    const parts: string[] = [];
    if (params.error) parts.push(`error=${quote(params.error)}`);
    if (params.description) parts.push(`error_description=${quote(params.description)}`);
    if (params.scope) parts.push(`scope=${quote(params.scope)}`);
    const rm = options.challengeResourceMetadata;
    if (typeof rm === 'string') parts.push(`resource_metadata=${quote(rm)}`);
    else if (rm !== false || prmMode === 'header-only') parts.push(`resource_metadata=${quote(mcp.prmUrl)}`);
    return parts.length > 0 ? `Bearer ${parts.join(', ')}` : 'Bearer';
  }

  function deny(res: ServerResponse, status: 400 | 401 | 403, params: Parameters<typeof challenge>[0]) {
    if (status === 403) mcp.counters.forbidden++;
    else mcp.counters.unauthorized++;
    sendJson(
      res,
      status,
      { error: params.error ?? 'unauthorized', error_description: params.description ?? 'authentication required' },
      { 'www-authenticate': challenge(params) },
    );
  }

  /** RFC 6750 §2.1 bearer check; returns AuthInfo or sends the challenge. */
  function authorize(req: IncomingMessage, res: ServerResponse): AuthInfo | undefined {
    const header = req.headers.authorization;
    const scope401 = options.challengeScope;
    if (header === undefined || !/^bearer(\s|$)/i.test(header)) {
      // RFC 6750 §3.1: no error code when the request carried no authentication.
      deny(res, 401, { scope: scope401 });
      return undefined;
    }
    const m = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (!m) {
      deny(res, 400, { error: 'invalid_request', description: 'malformed bearer token' });
      return undefined;
    }
    const token = m[1]!;
    const info = as.verifyAccessToken(token);
    if (!info) {
      deny(res, 401, { error: 'invalid_token', description: 'token unknown, revoked or expired', scope: scope401 });
      return undefined;
    }
    // RFC 8707 / MCP-AUTHZ "Token Audience Binding": the token must be for this resource.
    if (info.resource !== mcp.resource) {
      deny(res, 401, { error: 'invalid_token', description: 'token was issued for another resource', scope: scope401 });
      return undefined;
    }
    const required = mcp.requiredScopes ?? [];
    const missing = required.filter((s) => !info.scopes.includes(s));
    if (missing.length > 0) {
      deny(res, 403, { error: 'insufficient_scope', description: `missing scope: ${missing.join(' ')}`, scope: required.join(' ') });
      return undefined;
    }
    mcp.counters.authorized++;
    return {
      token,
      clientId: info.clientId,
      scopes: info.scopes,
      expiresAt: info.expiresAt,
      resource: new URL(mcp.resource),
      extra: info.idp === undefined ? { sub: info.sub } : { sub: info.sub, idp: info.idp },
    };
  }

  function rpcMethodOf(body: unknown): string | undefined {
    const list = Array.isArray(body) ? body : [body];
    const names = list
      .map((m) => (typeof m === 'object' && m !== null && typeof (m as { method?: unknown }).method === 'string' ? (m as { method: string }).method : undefined))
      .filter((m): m is string => m !== undefined);
    return names.length > 0 ? names.join(',') : undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = pathnameOf(req);
    const method = req.method ?? 'GET';
    const headers = headersOf(req);
    const isMcp = path === mcpPath;
    if (isMcp) mcp.counters.requests++;
    if (path === prmPath) mcp.counters.prm++;

    let body: unknown;
    let bodyError = false;
    if (isMcp && method === 'POST') {
      try {
        body = JSON.parse(await readBody(req, 1024 * 1024));
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        bodyError = true;
      }
    }
    const record: McpRecordedRequest = { path, method, headers };
    if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
    const rpcMethod = rpcMethodOf(body);
    if (rpcMethod !== undefined) {
      record.rpcMethod = rpcMethod;
      noteRequest(req, { rpc: rpcMethod });
    }
    mcp.requests.push(record);

    const reply = options.answerFirst?.({ path, method, headers, form: {} });
    if (reply) return sendOverride(res, reply);

    if (path === prmPath && method === 'GET') {
      // RFC 9728 §3.2.
      return sendJson(res, 200, {
        resource: options.resourceOverride ?? mcp.resource,
        authorization_servers: [as.issuer],
        ...(options.scopesSupported ? { scopes_supported: options.scopesSupported } : {}),
        bearer_methods_supported: ['header'],
        ...options.prmOverrides,
      });
    }
    if (path === '/public' && method === 'GET') return sendText(res, 200, 'public');
    if (!isMcp) return sendJson(res, 404, { error: 'not_found' });

    const authInfo = authorize(req, res);
    if (!authInfo) return;
    if (method !== 'POST') {
      // Stateless server: no standalone SSE stream (GET) and no sessions to DELETE.
      return sendJson(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null }, { allow: 'POST' });
    }
    if (bodyError) {
      return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const server = buildMcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(Object.assign(req, { auth: authInfo }), res, body);
  }

  const http = await startHttpServer(handle, options.listen);
  const origin = http.url;
  Object.assign(mcp, {
    url: `${origin}${mcpPath}`,
    origin,
    resource: `${origin}${mcpPath}`,
    prmUrl: `${origin}${prmPath}`,
    close: http.close,
  });
  return mcp;
}
