/**
 * Workload identity (SEP-1933): a platform-issued JWT sent as the RFC 7523 jwt-bearer assertion to
 * the MCP server's authorization server, against a loopback AS that verifies it with the test
 * platform's key and a real MCP SDK server, through a real MCP SDK client.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import {
  ConfigurationError,
  CrossAppAccess,
  CrossAppAccessError,
  memoryTokenStore,
  OAuthResponseError,
  withCrossAppAccess,
  type CrossAppAccessOptions,
  type WorkloadAssertionContext,
} from '../src/index.js';
import { startAuthorizationServer, type AuthorizationServer } from './servers/authorization-server.js';
import { startMcpServer, type McpTestServer } from './servers/mcp-server.js';
import { DEFAULT_AS_CLIENT } from './servers/stack.js';
import { testPlatform, type TestPlatform } from './helpers/platform.js';
import { toolText, whoamiThrough } from './helpers/mcp-clients.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Agent, request } from 'undici';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { listToolsInit } from './helpers/stack-options.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** A public client: the AS metadata then lists `none`, and no secret is sent. */
const WORKLOAD_CLIENT = { clientId: 'billing-agent', method: 'none' as const };

let platform: TestPlatform;
let as: AuthorizationServer;
let mcp: McpTestServer;
const platformEntry = { clients: undefined as string[] | undefined, scopes: undefined as string[] | undefined };

beforeAll(async () => {
  platform = await testPlatform();
  as = await startAuthorizationServer({
    clients: [WORKLOAD_CLIENT, DEFAULT_AS_CLIENT],
    trustedIdp: [],
    // A getter-backed entry: each test sets which clients and scopes the platform's workloads may use.
    trustedPlatforms: [
      {
        issuer: platform.issuer,
        publicKey: platform.publicKey,
        get clients() {
          return platformEntry.clients;
        },
        get scopes() {
          return platformEntry.scopes;
        },
      },
    ],
  });
  mcp = await startMcpServer({ authorizationServer: as });
});
afterAll(async () => {
  await Promise.all([mcp?.close(), as?.close()]);
});
beforeEach(() => {
  as.reset();
  mcp.reset();
  as.accessTokenTtlSeconds = 3600;
  platformEntry.clients = undefined;
  platformEntry.scopes = undefined;
});

/** An assertion source that mints for the audience it is asked for, recording every context. */
function workload(sub = 'system:serviceaccount:billing:agent', expiresIn = 600) {
  const asked: WorkloadAssertionContext[] = [];
  const assertion = (context: WorkloadAssertionContext) => {
    asked.push(context);
    return platform.mint({ sub, aud: context.audience, expiresIn });
  };
  return { asked, assertion };
}

function options(overrides: Partial<CrossAppAccessOptions> = {}): CrossAppAccessOptions {
  return { assertion: workload().assertion, client: { clientId: WORKLOAD_CLIENT.clientId }, resource: mcp.resource, ...overrides };
}

/** What the MCP server's whoami says for a workload of the test platform. */
const whoami = (sub: string) => `sub=${sub} scopes= idp=${platform.issuer}`;
const tokenRequests = () => as.requests.filter((r) => r.path.endsWith('/token'));

describe('options: exactly one of idToken + idp, or assertion', () => {
  const idp = { issuer: 'https://idp.example', clientId: 'x' };
  const client = { clientId: 'c' };
  const assertion = () => 'jwt';

  it('refuses assertion with idToken or idp, naming what clashes', () => {
    expect(() => withCrossAppAccess(fetch, { assertion, idToken: 't', idp, client })).toThrow(/assertion: replaces idToken and idp/);
    expect(() => withCrossAppAccess(fetch, { assertion, idp, client })).toThrow(ConfigurationError);
    expect(() => withCrossAppAccess(fetch, { assertion, idToken: 't', client })).toThrow(/replaces idToken/);
    expect(() => withCrossAppAccess(fetch, { assertion, subjectTokenType: 'saml2', client })).toThrow(/replaces subjectTokenType/);
    expect(() => new CrossAppAccess({ assertion, idp, client })).toThrow(/assertion: replaces idp/);
  });

  it('refuses neither, and a half of the user flow, saying assertion is the other way', () => {
    expect(() => withCrossAppAccess(fetch, { client } as CrossAppAccessOptions)).toThrow(/idToken: is required .*or assertion for workload identity/);
    expect(() => withCrossAppAccess(fetch, { idToken: 't', client })).toThrow(/idp: is required .*or assertion/);
    expect(() => new CrossAppAccess({ client })).toThrow(/idp: is required/);
  });

  it('refuses an assertion that is not a function, and an idToken given to a workload engine\'s session anywhere', async () => {
    expect(() => withCrossAppAccess(fetch, { assertion: 'jwt' as never, client })).toThrow(/assertion: expected a function/);
    const xaa = new CrossAppAccess({ assertion, client });
    expect(() => xaa.fetch(fetch, { user: 'a', idToken: 't' })).toThrow(/idToken: is not taken by fetch of an engine with assertion/);
    expect(() => xaa.fetch(fetch, { user: () => 'a', idToken: () => 't' })).toThrow(/idToken: is not taken/);
    expect(() => crossAppAccessInterceptor(xaa, { user: 'a', idToken: 't' })).toThrow(/idToken: is not taken/);
    await expect(xaa.getAccessToken({ user: 'a', idToken: 't', url: 'https://mcp.example/mcp' })).rejects.toThrow(/idToken: is not taken by getAccessToken/);
    expect(() => withCrossAppAccess(fetch, { assertion, client: { clientId: 'c', idp: 'https://idp.example' } })).toThrow(/client\[0\]\.idp|client\.idp/);
  });
});

describe('the jwt-bearer grant with the platform JWT', () => {
  it('a real MCP SDK client gets a token for the workload: the JWT for the AS issuer, client auth none, no IdP', async () => {
    const source = workload();
    const authed = withCrossAppAccess(fetch, options({ assertion: source.assertion }));
    expect(await whoamiThrough(mcp.url, authed, false)).toBe(whoami('system:serviceaccount:billing:agent'));
    const [grant, ...more] = tokenRequests();
    expect(more).toEqual([]);
    expect(grant!.form).toMatchObject({ grant_type: JWT_BEARER, client_id: WORKLOAD_CLIENT.clientId, resource: mcp.resource });
    expect(grant!.form.client_secret).toBeUndefined();
    expect(grant!.headers.authorization).toBeUndefined();
    expect(decodeJwt(grant!.form.assertion!).aud).toBe(as.issuer);
    expect(source.asked.map(({ audience, resource, reason, user }) => ({ audience, resource, reason, user }))).toEqual([
      { audience: as.issuer, resource: mcp.resource, reason: 'initial', user: undefined },
    ]);
    expect(source.asked[0]!.signal).toBeInstanceOf(AbortSignal);
  });

  it('uses the method the metadata allows for a registration with a secret (client_secret_basic)', async () => {
    const authed = withCrossAppAccess(fetch, options({ client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret } }));
    expect((await authed(mcp.url, listToolsInit())).status).toBe(200);
    expect(tokenRequests()[0]!.headers.authorization).toMatch(/^Basic /);
  });

  it('single-flight: 25 concurrent first requests read the assertion once and make one grant', async () => {
    const source = workload();
    const authed = withCrossAppAccess(fetch, options({ assertion: source.assertion }));
    const statuses = await Promise.all(Array.from({ length: 25 }, (_, i) => authed(mcp.url, listToolsInit(i)).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(tokenRequests()).toHaveLength(1);
    expect(source.asked).toHaveLength(1);
  });

  it('renewal: an expired token is replaced with a new grant, the assertion asked with reason renewal', async () => {
    let now = Date.now();
    // Valid for longer than the hour the clock jumps: the engine reads its exp by the same clock.
    const source = workload('system:serviceaccount:billing:agent', 7200);
    const authed = withCrossAppAccess(fetch, options({ assertion: source.assertion, now: () => now }));
    expect((await authed(mcp.url, listToolsInit())).status).toBe(200);
    now += 3601_000;
    expect((await authed(mcp.url, listToolsInit())).status).toBe(200);
    expect(tokenRequests()).toHaveLength(2);
    expect(source.asked.map((c) => c.reason)).toEqual(['initial', 'renewal']);
  });

  it('a 401 for the token: one fresh grant, the request replayed, then served', async () => {
    const authed = withCrossAppAccess(fetch, options());
    expect((await authed(mcp.url, listToolsInit())).status).toBe(200);
    as.revokeAll();
    const responses = await Promise.all([1, 2, 3].map((i) => authed(mcp.url, listToolsInit(i))));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(tokenRequests()).toHaveLength(2);
    expect(mcp.counters.unauthorized).toBeGreaterThanOrEqual(1);
  });

  it('an expired JWT from the source is asked for again (reason expired), never sent', async () => {
    const reasons: string[] = [];
    const authed = withCrossAppAccess(fetch, options({
      assertion: ({ audience, reason }) => {
        reasons.push(reason);
        return platform.mint({ sub: 'w', aud: audience, expiresIn: reason === 'expired' ? 600 : -3600 });
      },
    }));
    expect((await authed(mcp.url, listToolsInit())).status).toBe(200);
    expect(reasons).toEqual(['initial', 'expired']);
    expect(tokenRequests()).toHaveLength(1);
  });

  it('a source that keeps returning an expired JWT, or throws: assertion_unavailable, nothing sent', async () => {
    const expired = withCrossAppAccess(fetch, options({ assertion: ({ audience }) => platform.mint({ sub: 'w', aud: audience, expiresIn: -3600 }) }));
    await expect(expired(mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'assertion_unavailable', stage: 'assertion' });
    const events: unknown[] = [];
    const failing = withCrossAppAccess(fetch, options({ assertion: () => Promise.reject(new Error('token file eyJ.secret missing')), onEvent: (event) => events.push(event) }));
    const error = await failing(mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'assertion_unavailable', stage: 'assertion' });
    expect((error as Error).message).not.toContain('eyJ.secret');
    expect(events).toContainEqual(expect.objectContaining({ type: 'failure', code: 'assertion_unavailable' }));
    expect(JSON.stringify(events)).not.toContain('eyJ.secret');
    expect(tokenRequests()).toEqual([]);
  });
});

describe('refusals: typed errors, never retried, never another grant type', () => {
  async function refused(overrides: Partial<CrossAppAccessOptions>): Promise<CrossAppAccessError> {
    const authed = withCrossAppAccess(fetch, options({ retry: { retries: 3, baseDelay: 0 }, ...overrides }));
    const error = await authed(mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthResponseError);
    // Exactly one token request, and it was the jwt-bearer grant.
    expect(tokenRequests().map((r) => r.form.grant_type)).toEqual([JWT_BEARER]);
    return error as CrossAppAccessError;
  }

  it('invalid_grant (a JWT signed by a key the AS does not trust): assertion_rejected, the JWT in no message', async () => {
    const impostor = await testPlatform(platform.issuer);
    let sent = '';
    const error = await refused({
      assertion: async ({ audience }) => (sent = await impostor.mint({ sub: 'w', aud: audience })),
    });
    expect(error).toMatchObject({ code: 'assertion_rejected', stage: 'jwt_bearer', error: 'invalid_grant', status: 400 });
    expect(JSON.stringify({ ...error.toJSON(), stack: error.stack })).not.toContain(sent);
  });

  it('invalid_grant: the same refused JWT is not sent again by later requests (the source asked for a fresh one first); a new one is', async () => {
    const impostor = await testPlatform(platform.issuer);
    const refusedJwt = await impostor.mint({ sub: 'w', aud: as.issuer });
    let jwt = refusedJwt;
    const reasons: string[] = [];
    const authed = withCrossAppAccess(fetch, options({ assertion: ({ reason }) => (reasons.push(reason), jwt) }));
    for (let i = 0; i < 3; i++) await expect(authed(mcp.url, listToolsInit(i))).rejects.toMatchObject({ code: 'assertion_rejected' });
    expect(tokenRequests()).toHaveLength(1);
    expect(reasons).toEqual(['initial', 'initial', 'expired', 'initial', 'expired']);
    // A source that gives a fresh JWT when asked for one ('expired'): sent, and it works.
    const fresh = await platform.mint({ sub: 'w', aud: as.issuer });
    const rotating = withCrossAppAccess(fetch, options({ assertion: ({ reason }) => (reason === 'expired' ? fresh : refusedJwt) }));
    await expect(rotating(mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'assertion_rejected' });
    expect((await rotating(mcp.url, listToolsInit())).status).toBe(200);
    expect(tokenRequests().map((r) => r.form.assertion === refusedJwt)).toEqual([true, true, false]);
  });

  it('invalid_scope: its own code', async () => {
    platformEntry.scopes = ['billing:read'];
    const error = await refused({ scope: 'billing:admin' });
    expect(error).toMatchObject({ code: 'invalid_scope', stage: 'jwt_bearer', error: 'invalid_scope' });
  });

  it('unauthorized_client: its own code', async () => {
    platformEntry.clients = ['another-client'];
    const error = await refused({});
    expect(error).toMatchObject({ code: 'unauthorized_client', stage: 'jwt_bearer', error: 'unauthorized_client' });
  });
});

describe('a JWT for another audience is never sent', () => {
  it('aud naming another server (a Kubernetes API token, say): assertion_mismatch, no token request', async () => {
    const authed = withCrossAppAccess(fetch, options({ assertion: () => platform.mint({ sub: 'w', aud: 'https://kubernetes.default.svc' }) }));
    await expect(authed(mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'assertion_mismatch', stage: 'assertion' });
    expect(tokenRequests()).toEqual([]);
  });

  it('aud as a list that names the authorization server among others is sent, and accepted', async () => {
    const authed = withCrossAppAccess(fetch, options({ assertion: ({ audience }) => platform.mint({ sub: 'w', aud: ['https://other.example', audience] }) }));
    expect((await authed(mcp.url, listToolsInit())).status).toBe(200);
    expect(tokenRequests()).toHaveLength(1);
  });
});

describe('cache keys separate workloads', () => {
  it('two engines sharing one store and one user key, as two workloads: each gets its own token', async () => {
    const store = memoryTokenStore({ max: 100 });
    const engine = (sub: string) => new CrossAppAccess({ assertion: workload(sub).assertion, client: { clientId: WORKLOAD_CLIENT.clientId }, resource: mcp.resource, store });
    const a = engine('spiffe://example.org/ns/a/sa/agent').fetch(fetch, { user: 'self' });
    const b = engine('spiffe://example.org/ns/b/sa/agent').fetch(fetch, { user: 'self' });
    expect(await whoamiThrough(mcp.url, a, true)).toBe(whoami('spiffe://example.org/ns/a/sa/agent'));
    expect(await whoamiThrough(mcp.url, b, true)).toBe(whoami('spiffe://example.org/ns/b/sa/agent'));
    expect(await whoamiThrough(mcp.url, a, false)).toBe(whoami('spiffe://example.org/ns/a/sa/agent'));
    expect(tokenRequests()).toHaveLength(2);
  });

  it('an engine\'s source is told the user key; a key whose source turns to another workload is refused (user_mismatch)', async () => {
    const asked: (string | undefined)[] = [];
    let sub = 'workload-1';
    const xaa = new CrossAppAccess({
      assertion: ({ audience, user }) => {
        asked.push(user);
        return platform.mint({ sub, aud: audience });
      },
      client: { clientId: WORKLOAD_CLIENT.clientId },
      resource: mcp.resource,
    });
    const first = await xaa.getAccessToken({ user: 'tenant-7', url: mcp.url });
    expect(as.verifyAccessToken(first.token)?.sub).toBe('workload-1');
    as.revokeAll();
    xaa.invalidate({ user: 'tenant-7', token: first.token, url: mcp.url });
    sub = 'workload-2';
    await expect(xaa.getAccessToken({ user: 'tenant-7', url: mcp.url })).rejects.toMatchObject({ code: 'user_mismatch', stage: 'assertion' });
    expect(asked).toEqual(['tenant-7', 'tenant-7']);
    expect(tokenRequests()).toHaveLength(1);
  });
});

describe('a workload engine through every adapter', () => {
  const engine = () => new CrossAppAccess({ assertion: workload('spiffe://example.org/agent').assertion, client: { clientId: WORKLOAD_CLIENT.clientId }, resource: mcp.resource });

  it('authProvider on a workload engine takes no ID token (ConfigurationError when one is given), and needs none', () => {
    const xaa = engine();
    expect(() => xaa.authProvider({ user: 'agent', idToken: 'an-id-token', url: mcp.url })).toThrow(/idToken.*assertion/);
    expect(() => xaa.authProvider({ user: 'agent', url: mcp.url })).not.toThrow();
  });

  it('the MCP SDK v2 authProvider: a real v2 client, one grant, a 401 answered by one more', async () => {
    const xaa = engine();
    const client = new ClientV2({ name: 'agent', version: '1.0.0' });
    await client.connect(new TransportV2(new URL(mcp.url), { authProvider: xaa.authProvider({ user: 'agent', url: mcp.url }) }));
    expect(toolText(await client.callTool({ name: 'whoami', arguments: {} }))).toBe(whoami('spiffe://example.org/agent'));
    as.revokeAll();
    expect(toolText(await client.callTool({ name: 'whoami', arguments: {} }))).toBe(whoami('spiffe://example.org/agent'));
    await client.close();
    expect(tokenRequests()).toHaveLength(2);
  });

  it('the undici interceptor', async () => {
    const agent = new Agent().compose(crossAppAccessInterceptor(engine(), { user: 'agent' }));
    try {
      const init = listToolsInit();
      const answer = await request(mcp.url, { dispatcher: agent, method: 'POST', headers: init.headers as Record<string, string>, body: init.body as string });
      await answer.body.dump();
      expect(answer.statusCode).toBe(200);
      expect(tokenRequests()).toHaveLength(1);
    } finally {
      await agent.close();
    }
  });
});

describe('with DPoP (RFC 9449)', () => {
  it('the workload grant carries a proof; its DPoP-bound token goes as Authorization: DPoP with a fresh proof per request', async () => {
    const grantProofs = as.dpop.proofs.length;
    const resourceProofs = mcp.dpop.proofs.length;
    const authed = withCrossAppAccess(fetch, options({ dpop: true }));
    expect(await whoamiThrough(mcp.url, authed, false)).toBe(whoami('system:serviceaccount:billing:agent'));
    expect(as.dpop.proofs.length - grantProofs).toBe(1);
    const tokened = mcp.requests.filter((r) => r.authorization !== undefined);
    expect(tokened.length).toBeGreaterThan(1);
    expect(tokened.every((r) => r.authorization!.startsWith('DPoP '))).toBe(true);
    const proofs = mcp.dpop.proofs.slice(resourceProofs);
    expect(proofs.every((p) => p.jkt === as.dpop.proofs.at(-1)!.jkt)).toBe(true);
    expect(new Set(proofs.map((p) => p.claims.jti)).size).toBe(proofs.length);
  });
});
