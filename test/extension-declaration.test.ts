/**
 * Declaring the Enterprise-Managed Authorization extension: real MCP SDK servers read what real SDK
 * clients declared, in `initialize` (v1 server, 2025-11-25) and in each request's `_meta` envelope
 * (v2 server, 2026-07-28). Every connection goes through this package's fetch against a loopback
 * IdP and authorization server, as an application would use it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, declareEnterpriseManagedAuthorization, ENTERPRISE_MANAGED_AUTHORIZATION, withCrossAppAccess } from '../src/index.js';
import { startAuthorizationServer, type AuthorizationServer } from './servers/authorization-server.js';
import { readBody, sendJson, startHttpServer, type StartedServer } from './servers/http-util.js';
import { startIdp, type Idp } from './servers/idp.js';
import { DEFAULT_AS_CLIENT } from './servers/stack.js';
import { toolText } from './helpers/mcp-clients.js';

const CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';

let idp: Idp;
let as: AuthorizationServer;

beforeAll(async () => {
  idp = await startIdp();
  as = await startAuthorizationServer({ clients: [DEFAULT_AS_CLIENT], trustedIdp: { issuer: idp.issuer, publicKey: idp.publicKey } });
});
afterAll(async () => {
  await Promise.all([as?.close(), idp?.close()]);
});

/** A fetch through the package for `url` (a fresh wrapper: its own token). */
function authedFetch(url: string) {
  return withCrossAppAccess(fetch, {
    idToken: () => idp.mintIdToken(),
    idp: { issuer: idp.issuer, clientId: idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    resource: url,
  });
}

/**
 * A loopback protected resource: RFC 9728 metadata naming the test AS, a bearer check, then `serve`.
 * Every JSON-RPC body that reached `serve` is kept in `bodies`.
 */
async function protectedResource(serve: (req: IncomingMessage, res: ServerResponse, body: unknown) => Promise<void>) {
  const bodies: unknown[] = [];
  let resource = '';
  const http: StartedServer = await startHttpServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/.well-known/oauth-protected-resource/mcp') return sendJson(res, 200, { resource, authorization_servers: [as.issuer] });
    if (path !== '/mcp') return sendJson(res, 404, { error: 'not_found' });
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const info = token === undefined ? undefined : as.verifyAccessToken(token);
    if (!info || info.resource !== resource) {
      return sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': `Bearer resource_metadata="${http.url}/.well-known/oauth-protected-resource/mcp"` });
    }
    const body = req.method === 'POST' ? JSON.parse(await readBody(req, 1024 * 1024)) : undefined;
    if (body !== undefined) bodies.push(body);
    await serve(req, res, body);
  });
  resource = `${http.url}/mcp`;
  return { url: resource, bodies, close: () => http.close() };
}

/** A v1 SDK server (stateful: one session) whose tool answers the extensions the client declared in `initialize`. */
async function v1Server() {
  const server = new McpServer({ name: 'reads-initialize', version: '1.0.0' });
  server.registerTool('declared', { description: 'The extensions the client declared' }, () => ({
    content: [{ type: 'text', text: JSON.stringify(server.server.getClientCapabilities()?.extensions ?? null) }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), enableJsonResponse: true });
  await server.connect(transport);
  const resource = await protectedResource((req, res, body) => transport.handleRequest(req, res, body));
  return { ...resource, close: async () => Promise.all([resource.close(), server.close()]) };
}

/** A v2 SDK server serving 2026-07-28: its tool answers the extensions of the request's own `_meta` envelope. */
async function v2Server() {
  const handler = createMcpHandler(() => {
    const server = new McpServerV2({ name: 'reads-envelope', version: '1.0.0' });
    server.registerTool('declared', { description: 'The extensions the request declared' }, (ctx) => {
      const capabilities = ctx.mcpReq.envelope?.[CAPABILITIES_META_KEY as never] as { extensions?: unknown } | undefined;
      return { content: [{ type: 'text', text: JSON.stringify(capabilities?.extensions ?? null) }] };
    });
    return server;
  });
  const resource = await protectedResource(async (req, res, body) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
    const answer = await handler.fetch(new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  return { ...resource, close: async () => Promise.all([resource.close(), handler.close()]) };
}

describe('declareEnterpriseManagedAuthorization', () => {
  it('adds the extension to a copy, keeping the other capabilities and extensions', () => {
    const given = { elicitation: {}, extensions: { 'example.com/other': { level: 2 } } };
    const declared = declareEnterpriseManagedAuthorization(given);
    expect(declared).toEqual({ elicitation: {}, extensions: { 'example.com/other': { level: 2 }, [ENTERPRISE_MANAGED_AUTHORIZATION]: {} } });
    expect(given.extensions).toEqual({ 'example.com/other': { level: 2 } });
    expect(declareEnterpriseManagedAuthorization()).toEqual({ extensions: { 'io.modelcontextprotocol/enterprise-managed-authorization': {} } });
  });

  it('refuses capabilities or extensions that are not objects, with a ConfigurationError', () => {
    expect(() => declareEnterpriseManagedAuthorization([] as never)).toThrow(ConfigurationError);
    expect(() => declareEnterpriseManagedAuthorization({ extensions: ['x'] } as never)).toThrow(/capabilities\.extensions/);
    expect(() => declareEnterpriseManagedAuthorization({ extensions: null } as never)).toThrow(ConfigurationError);
  });
});

describe('a real MCP SDK server reads the declaration', () => {
  it('v1 client → v1 server: declared in initialize when the helper is used, absent otherwise', async () => {
    for (const declare of [true, false]) {
      const server = await v1Server();
      try {
        const client = new Client({ name: 'agent', version: '1.0.0' }, declare ? { capabilities: declareEnterpriseManagedAuthorization() } : {});
        await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { fetch: authedFetch(server.url) }));
        const seen = JSON.parse(toolText(await client.callTool({ name: 'declared', arguments: {} })));
        await client.close();
        expect(seen).toEqual(declare ? { [ENTERPRISE_MANAGED_AUTHORIZATION]: {} } : null);
      } finally {
        await server.close();
      }
    }
  });

  it('v2 client on 2025-11-25 → v1 server: declared in initialize', async () => {
    const server = await v1Server();
    try {
      const client = new ClientV2({ name: 'agent', version: '1.0.0' }, { capabilities: declareEnterpriseManagedAuthorization({ roots: {} }) });
      await client.connect(new TransportV2(new URL(server.url), { fetch: authedFetch(server.url) }));
      const seen = JSON.parse(toolText(await client.callTool({ name: 'declared', arguments: {} })));
      await client.close();
      expect(seen).toEqual({ [ENTERPRISE_MANAGED_AUTHORIZATION]: {} });
    } finally {
      await server.close();
    }
  });

  it('v2 client on 2026-07-28 → v2 server: declared in the _meta of every request', async () => {
    const server = await v2Server();
    try {
      const client = new ClientV2(
        { name: 'agent', version: '1.0.0' },
        { capabilities: declareEnterpriseManagedAuthorization(), versionNegotiation: { mode: { pin: '2026-07-28' } } },
      );
      await client.connect(new TransportV2(new URL(server.url), { fetch: authedFetch(server.url) }));
      const seen = JSON.parse(toolText(await client.callTool({ name: 'declared', arguments: {} })));
      await client.listTools();
      await client.close();
      expect(seen).toEqual({ [ENTERPRISE_MANAGED_AUTHORIZATION]: {} });
      // Each request (the discovery probe, tools/call, tools/list) carried it on the wire.
      const requests = server.bodies.filter((b): b is { id: unknown; method: string; params?: { _meta?: Record<string, { extensions?: unknown }> } } => typeof b === 'object' && b !== null && 'id' in b && 'method' in b);
      expect(requests.map((r) => r.method)).toEqual(expect.arrayContaining(['server/discover', 'tools/call', 'tools/list']));
      for (const request of requests) expect(request.params?._meta?.[CAPABILITIES_META_KEY]?.extensions).toEqual({ [ENTERPRISE_MANAGED_AUTHORIZATION]: {} });
    } finally {
      await server.close();
    }
  });
});
