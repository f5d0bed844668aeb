/**
 * Interop with a real third-party authorization server: Cloudflare's `@cloudflare/workers-oauth-provider`
 * (OAuthProvider with `enterpriseManagedAuthorization`) in workerd under `wrangler dev`, redeeming the
 * ID-JAGs of our loopback IdP (served over https with a throwaway CA: the provider accepts only https
 * issuers and JWKS URIs). The package is used through its public API only; the Worker's /admin hooks
 * create clients, revoke grants and read what its token endpoint answered.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CrossAppAccess,
  CrossAppAccessError,
  OAuthResponseError,
  withCrossAppAccess,
  type ClientOptions,
  type CrossAppAccessEvent,
  type CrossAppAccessFetch,
  type CrossAppAccessOptions,
} from '../../../src/index.js';
import { startIdp, type Idp } from '../../servers/idp.js';
import { startWorker, type AuthMethod, type TokenLogEntry, type WorkerUnderTest } from './harness.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const dir = process.env.XAA_INTEROP_DIR;
if (!dir) throw new Error('run with `npm run interop` (its global setup makes the TLS material)');

let idp: Idp;
let worker: WorkerUnderTest;
/** One client per token endpoint auth method, registered at start (createClient assigns the ids). */
const clients = {} as Record<AuthMethod, { clientId: string; clientSecret?: string }>;

beforeAll(async () => {
  idp = await startIdp({
    tls: { cert: readFileSync(join(dir, 'server.pem'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8'), hostname: '127.0.0.1' },
  });
  worker = await startWorker({ idpIssuer: idp.issuer, idpJwksUri: idp.jwksUri, caFile: join(dir, 'ca.pem'), tmpDir: dir });
  for (const method of ['client_secret_basic', 'client_secret_post', 'none'] as const) clients[method] = await worker.createClient(method);
});
afterAll(async () => {
  await worker?.close();
  await idp?.close();
});

let events: CrossAppAccessEvent[];
beforeEach(async () => {
  events = [];
  idp.reset();
  idp.override = undefined;
  idp.grantScopes = undefined;
  // The ID-JAG's client_id is the client the AS assigned (ID-JAG draft §4.3.3: the IdP maps it).
  idp.jagClientId = clients.client_secret_basic.clientId;
  await worker.resetLog();
});

/** A fresh user per test: grants and cached tokens never carry over. */
let users = 0;
const newUser = (name: string) => `${name}-${++users}-${Date.now().toString(36)}`;

function options(user: string, client: ClientOptions, extra: Partial<CrossAppAccessOptions> = {}): CrossAppAccessOptions {
  return {
    idToken: () => idp.mintIdToken({ sub: user }),
    idp: { issuer: idp.issuer, clientId: idp.clientId },
    client,
    onEvent: (event) => events.push(event),
    ...extra,
  };
}

const confidential = (method: 'client_secret_basic' | 'client_secret_post', authMethod?: AuthMethod): ClientOptions => ({
  clientId: clients[method].clientId,
  clientSecret: clients[method].clientSecret!,
  ...(authMethod ? { authMethod } : {}),
});

/** One JSON-RPC request to the MCP endpoint (MCP Streamable HTTP, JSON reply). */
function rpc(f: CrossAppAccessFetch | typeof fetch, method: string, params?: unknown): Promise<Response> {
  return f(worker.resource, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
}

/** Calls a tool and returns what the protected handler saw of the token: its subject, user and scopes. */
async function call(f: CrossAppAccessFetch, tool = 'whoami'): Promise<{ sub: string; userId: string; scope: string[] }> {
  const response = await rpc(f, 'tools/call', { name: tool });
  expect(response.status, await response.clone().text()).toBe(200);
  const body = (await response.json()) as { result: { content: Array<{ text: string }> } };
  return JSON.parse(body.result.content[0]!.text) as { sub: string; userId: string; scope: string[] };
}

const grants = (log: { token: TokenLogEntry[] }) => log.token.filter((t) => t.grantType === JWT_BEARER);
const count = (type: CrossAppAccessEvent['type']) => events.filter((e) => e.type === type).length;

describe('discovery', () => {
  it('from the 401 alone: the challenge names the path-aware PRM, whose AS issues a lower-case "bearer" token', async () => {
    const user = newUser('alice');
    const grantBodies: Array<Record<string, unknown>> = [];
    const oauthFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (String(input instanceof Request ? input.url : input) === `${worker.origin}/oauth/token`) grantBodies.push((await response.clone().json()) as Record<string, unknown>);
      return response;
    };
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_basic'), { oauthFetch }));
    expect(await call(f)).toEqual({ sub: user, userId: `ent-${user}`, scope: ['mcp:read'] });

    const log = await worker.log();
    // RFC 9728 §5.1: one unauthenticated request, answered 401 with resource_metadata; then the token.
    expect(log.unauthenticated).toBe(1);
    expect(log.apiRequests).toBe(1);
    expect(grants(log)).toEqual([{ grantType: JWT_BEARER, authMethod: 'client_secret_basic', clientId: clients.client_secret_basic.clientId, status: 200 }]);
    // RFC 8693 §2.1 at the IdP: audience = the AS issuer, resource = the PRM's resource (ID-JAG draft §4.3).
    const exchange = idp.requests.filter((r) => r.path === '/token');
    expect(exchange).toHaveLength(1);
    expect(exchange[0]!.form).toMatchObject({ audience: worker.origin, resource: worker.resource, scope: 'mcp:read' });
    expect(count('discovery')).toBeGreaterThanOrEqual(2);
    // RFC 6749 §5.1: token_type is case-insensitive; this server writes "bearer".
    expect(grantBodies).toHaveLength(1);
    expect(grantBodies[0]!.token_type).toBe('bearer');
  });

  it('with `resource`: the first request already carries a token (no 401 round trip)', async () => {
    const user = newUser('bob');
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_basic'), { resource: worker.resource }));
    expect((await call(f)).sub).toBe(user);
    const log = await worker.log();
    expect(log.unauthenticated).toBe(0);
    expect(grants(log)).toHaveLength(1);
    expect(idp.counters.exchange).toBe(1);
  });

  it('the access token is opaque, contains ":" (outside RFC 6750 b64token), and is used as issued', async () => {
    const user = newUser('carol');
    const xaa = new CrossAppAccess({ idp: { issuer: idp.issuer, clientId: idp.clientId }, client: confidential('client_secret_basic') });
    const { token, resource } = await xaa.getAccessToken({ user, idToken: () => idp.mintIdToken({ sub: user }), url: worker.resource });
    expect(resource).toBe(worker.resource);
    expect(token).toContain(':');
    const response = await fetch(worker.resource, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(200);
  });
});

describe('concurrency and the provider revoking a grant', () => {
  it('20 concurrent cold requests: one exchange, one jwt-bearer grant, all succeed', async () => {
    const user = newUser('dave');
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_basic')));
    const results = await Promise.all(Array.from({ length: 20 }, () => call(f)));
    expect(results.every((r) => r.sub === user)).toBe(true);
    expect(idp.counters.exchange).toBe(1);
    expect(grants(await worker.log())).toHaveLength(1);
  });

  it('revokeGrant at the provider: the next 10 concurrent requests get 401, re-acquire once, and all succeed', async () => {
    const user = newUser('erin');
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_basic')));
    await call(f);
    expect(await worker.revokeGrants(`ent-${user}`)).toBe(1);
    // The old token is dead at the provider (RFC 6750 §3.1 invalid_token).
    idp.reset();
    await worker.resetLog();
    const results = await Promise.all(Array.from({ length: 10 }, () => call(f)));
    expect(results.every((r) => r.sub === user)).toBe(true);
    expect(idp.counters.exchange).toBe(1);
    const log = await worker.log();
    expect(grants(log)).toHaveLength(1);
    expect(count('token_invalidated')).toBe(1);
    // The revoked grant is gone and a new one was made.
    expect(await worker.revokeGrants(`ent-${user}`)).toBe(1);
  });
});

describe('a replayed ID-JAG', () => {
  it('is refused with invalid_grant (jti replay, RFC 7523 §3); the package gets one new ID-JAG and succeeds', async () => {
    const user = newUser('frank');
    const exchangeBodies: string[] = [];
    const oauthFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (String(input instanceof Request ? input.url : input) === idp.tokenEndpoint) exchangeBodies.push(await response.clone().text());
      return response;
    };
    // One normal acquisition: its ID-JAG is now spent at the AS.
    await call(withCrossAppAccess(fetch, options(user, confidential('client_secret_basic'), { oauthFetch })));
    const spent = exchangeBodies[0]!;
    expect(JSON.parse(spent)).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:id-jag' });

    // The IdP answers the next exchange with that spent ID-JAG: a replay the AS must refuse.
    let replayed = 0;
    idp.override = (req) =>
      req.path === '/token' && replayed++ === 0 ? { status: 200, headers: { 'content-type': 'application/json' }, body: spent } : undefined;
    idp.reset();
    await worker.resetLog();
    events = [];
    // A second, cold wrapper for the same user.
    expect((await call(withCrossAppAccess(fetch, options(user, confidential('client_secret_basic'))))).sub).toBe(user);
    expect(grants(await worker.log()).map((g) => [g.status, g.error, g.reason])).toEqual([
      [400, 'invalid_grant', 'enterprise-managed-authorization/replayed'],
      [200, undefined, undefined],
    ]);
    // One new ID-JAG, not more (MCP Enterprise-Managed Authorization: a spent ID-JAG is never re-sent).
    expect(idp.counters.exchange).toBe(2);
    expect(count('token_exchange')).toBe(2);
  });
});

describe('step-up (403 insufficient_scope)', () => {
  it('the provider grants per-grant scopes: the union is requested on both legs and the write succeeds', async () => {
    const user = newUser('grace');
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_basic')));
    expect((await call(f)).scope).toEqual(['mcp:read']);
    // RFC 6750 §3.1: 403 with scope="mcp:read mcp:write"; MCP step-up re-authorizes for it.
    const wrote = await call(f, 'write');
    expect(wrote.scope.sort()).toEqual(['mcp:read', 'mcp:write']);
    expect(count('step_up')).toBe(1);
    const exchanges = idp.requests.filter((r) => r.path === '/token');
    expect(exchanges.map((r) => r.form.scope)).toEqual(['mcp:read', 'mcp:read mcp:write']);
    expect(grants(await worker.log()).map((g) => g.status)).toEqual([200, 200]);
  });

  it('an IdP that does not grant the wider scope: a typed insufficient_scope error, no loop', async () => {
    const user = newUser('heidi');
    idp.grantScopes = (requested) => requested.filter((s) => s !== 'mcp:write');
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_basic')));
    await call(f);
    const error = await rpc(f, 'tools/call', { name: 'write' }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect((error as CrossAppAccessError).code).toBe('insufficient_scope');
    expect(idp.counters.exchange).toBe(2);
    expect(grants(await worker.log())).toHaveLength(1);
  });
});

describe('client authentication at the provider (each client registered for one method)', () => {
  it.each([
    ['client_secret_basic', undefined],
    ['client_secret_basic', 'client_secret_basic'],
    ['client_secret_post', 'client_secret_post'],
  ] as const)('a %s client, authMethod %s: accepted, and sent that way (RFC 6749 §2.3.1)', async (method, authMethod) => {
    const user = newUser('ivan');
    idp.jagClientId = clients[method].clientId;
    const f = withCrossAppAccess(fetch, options(user, confidential(method, authMethod)));
    expect((await call(f)).sub).toBe(user);
    expect(grants(await worker.log())).toEqual([{ grantType: JWT_BEARER, authMethod: method, clientId: clients[method].clientId, status: 200 }]);
  });

  it('a client_secret_post client with the method chosen automatically (Basic): invalid_client naming the method and client.authMethod', async () => {
    const user = newUser('judy');
    idp.jagClientId = clients.client_secret_post.clientId;
    const secret = clients.client_secret_post.clientSecret!;
    const f = withCrossAppAccess(fetch, options(user, confidential('client_secret_post')));
    const error = (await call(f).then(() => undefined, (e: unknown) => e)) as OAuthResponseError;
    expect(error).toBeInstanceOf(OAuthResponseError);
    expect(error).toMatchObject({ code: 'oauth_error', stage: 'jwt_bearer', status: 401, error: 'invalid_client' });
    expect(error.message).toContain('"client_secret_basic" was chosen automatically');
    expect(error.message).toContain("client.authMethod ('client_secret_post')");
    expect(error.message).not.toContain(secret);
    // No second try with another method: one grant request, Basic.
    expect(grants(await worker.log()).map((g) => [g.authMethod, g.status, g.error])).toEqual([['client_secret_basic', 401, 'invalid_client']]);
    // And the hint is right: with that option the same client succeeds.
    const fixed = withCrossAppAccess(fetch, options(user, confidential('client_secret_post', 'client_secret_post')));
    expect((await call(fixed)).sub).toBe(user);
  });

  it('a public client (none): refused for this grant unless the provider allows public clients, and the error says so', async () => {
    const user = newUser('mallory');
    idp.jagClientId = clients.none.clientId;
    const f = withCrossAppAccess(fetch, options(user, { clientId: clients.none.clientId }));
    const error = (await call(f).then(() => undefined, (e: unknown) => e)) as OAuthResponseError;
    expect(error).toBeInstanceOf(OAuthResponseError);
    expect(error).toMatchObject({ stage: 'jwt_bearer', status: 401, error: 'invalid_client' });
    expect(error.errorDescription).toBe('Enterprise-managed authorization requires client authentication');
    expect(error.message).toContain('requires client authentication');
    expect(error.message).toContain('"none" was chosen automatically');
    expect(error.message).toContain('because no client.clientSecret or client.privateKey is configured');
    expect(grants(await worker.log()).map((g) => [g.authMethod, g.status, g.reason])).toEqual([
      ['none', 401, 'enterprise-managed-authorization/client_authentication_required'],
    ]);
    // Configured explicitly, the server's own words are the message (no automatic-choice hint).
    const explicit = withCrossAppAccess(fetch, options(user, { clientId: clients.none.clientId, authMethod: 'none' }));
    const error2 = (await call(explicit).then(() => undefined, (e: unknown) => e)) as OAuthResponseError;
    expect(error2.message).toContain('Enterprise-managed authorization requires client authentication');
    expect(error2.message).not.toContain('chosen automatically');
  });

  it('a wrong secret: a typed invalid_client error, and the secret is nowhere in the message, its JSON or the events', async () => {
    const user = newUser('oscar');
    const wrong = `wrong+secret/${Date.now()}:x y`;
    const f = withCrossAppAccess(fetch, options(user, { clientId: clients.client_secret_basic.clientId, clientSecret: wrong }));
    const error = (await call(f).then(() => undefined, (e: unknown) => e)) as OAuthResponseError;
    expect(error).toBeInstanceOf(OAuthResponseError);
    expect(error).toMatchObject({ code: 'oauth_error', stage: 'jwt_bearer', status: 401, error: 'invalid_client' });
    const basic = Buffer.from(`${encodeURIComponent(clients.client_secret_basic.clientId)}:${encodeURIComponent(wrong)}`).toString('base64');
    const everything = [error.message, JSON.stringify(error), JSON.stringify(error.toJSON()), String((error.cause as Error | undefined)?.message), JSON.stringify(events)].join('\n');
    for (const form of [wrong, encodeURIComponent(wrong), new URLSearchParams({ s: wrong }).toString().slice(2), basic]) expect(everything).not.toContain(form);
    expect(events.some((e) => e.type === 'failure' && e.stage === 'jwt_bearer')).toBe(true);
    // OAuth 4xx answers are not retried: one exchange, one grant request.
    expect(idp.counters.exchange).toBe(1);
    expect(grants(await worker.log())).toHaveLength(1);
  });
});

describe('the gateway engine (CrossAppAccess, many users)', () => {
  it('6 users × 5 concurrent calls: one acquisition per user, each token bound to its user; revoking one user re-acquires only theirs', async () => {
    const context = new AsyncLocalStorage<{ user: string }>();
    const xaa = new CrossAppAccess({
      idp: { issuer: idp.issuer, clientId: idp.clientId },
      client: confidential('client_secret_basic'),
      onEvent: (event) => events.push(event),
    });
    const gateway = xaa.fetch(fetch, {
      user: () => context.getStore()?.user,
      idToken: ({ user }) => idp.mintIdToken({ sub: user! }),
    });
    const people = Array.from({ length: 6 }, (_, i) => newUser(`user${i}`));
    const round = () => Promise.all(people.flatMap((user) => Array.from({ length: 5 }, () => context.run({ user }, () => call(gateway)))));

    const first = await round();
    expect(first.map((r) => r.sub)).toEqual(people.flatMap((user) => Array(5).fill(user)));
    expect(first.every((r) => r.userId === `ent-${r.sub}`)).toBe(true);
    expect(idp.counters.exchange).toBe(people.length);
    expect(grants(await worker.log())).toHaveLength(people.length);

    // A request without a user fails closed.
    const anonymous = await call(gateway).then(() => undefined, (e: unknown) => e);
    expect(anonymous).toBeInstanceOf(CrossAppAccessError);

    expect(await worker.revokeGrants(`ent-${people[2]}`)).toBe(1);
    idp.reset();
    await worker.resetLog();
    const mark = events.length;
    const second = await round();
    expect(second.map((r) => r.sub)).toEqual(people.flatMap((user) => Array(5).fill(user)));
    expect(idp.counters.exchange).toBe(1);
    expect(events.slice(mark).filter((e) => e.type === 'token_exchange').map((e) => (e as { user?: string }).user)).toEqual([people[2]]);
    expect(grants(await worker.log())).toHaveLength(1);
  });
});

describe('TLS trust of the IdP (the provider accepts only https issuers and JWKS URIs)', () => {
  it('a provider whose workerd does not trust the IdP\'s CA cannot verify the ID-JAG: the grant fails, typed', async () => {
    const untrusting = await startWorker({ idpIssuer: idp.issuer, idpJwksUri: idp.jwksUri, caFile: undefined, tmpDir: dir });
    try {
      const client = await untrusting.createClient('client_secret_basic');
      idp.jagClientId = client.clientId;
      const user = newUser('trent');
      const f = withCrossAppAccess(fetch, { ...options(user, { clientId: client.clientId, clientSecret: client.clientSecret! }), retry: false });
      const response = f(untrusting.resource, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
      const error = (await response.then(() => undefined, (e: unknown) => e)) as CrossAppAccessError;
      expect(error).toBeInstanceOf(OAuthResponseError);
      expect(error).toMatchObject({ stage: 'jwt_bearer', status: 400, error: 'invalid_grant' });
      // Refused, then once more with a fresh ID-JAG, as for any refused ID-JAG; the TLS handshake
      // failed, so no JWKS request reached the IdP.
      expect((await untrusting.log()).token.map((t) => t.reason)).toEqual([
        'enterprise-managed-authorization/jwks_fetch_failed',
        'enterprise-managed-authorization/jwks_fetch_failed',
      ]);
      expect(idp.requests.some((r) => r.path === '/jwks')).toBe(false);
    } finally {
      await untrusting.close();
    }
  });
});
