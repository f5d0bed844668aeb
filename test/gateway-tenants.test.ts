/**
 * One engine for a whole gateway: three enterprises (three IdPs), five MCP servers behind four
 * authorization servers, each of which registered the gateway separately (one of them once per
 * enterprise, one of them not at all). Real MCP SDK v1 and v2 clients through one gateway fetch,
 * users from AsyncLocalStorage, interleaved at random. Every answer names its own user and
 * enterprise; each (user, server) costs one exchange at the user's IdP and one grant with the right
 * registration; discovery happens once per server, authorization server and IdP; what is not
 * registered, and an IdP not listed, fail closed with nothing sent.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrossAppAccess, CrossAppAccessError, type ClientOptions, type CrossAppAccessEngineOptions, type CrossAppAccessFetch } from '../src/index.js';
import { decodeJwt } from '../src/oauth/jwt.js';
import { inBatches, shuffle, whoamiThrough } from './helpers/mcp-clients.js';
import { mulberry32 } from './helpers/prng.js';
import { listToolsInit } from './helpers/stack-options.js';
import { startAuthorizationServer, type AsClient, type AuthorizationServer } from './servers/authorization-server.js';
import { startIdp, type Idp } from './servers/idp.js';
import { startMcpServer, type McpTestServer } from './servers/mcp-server.js';

const ENTERPRISES = ['acme', 'globex', 'initech'] as const;
type Enterprise = (typeof ENTERPRISES)[number];

let idps: Record<Enterprise, Idp>;
let rogue: Idp;
let as: AuthorizationServer[];
let mcp: McpTestServer[];
/** Registrations at each authorization server, by index; AS 2 registered the gateway per enterprise, AS 3 not at all. */
const registered: AsClient[][] = [
  [{ clientId: 'gw-one', clientSecret: 'secret-one', method: 'client_secret_basic' }],
  [{ clientId: 'gw-two', clientSecret: 'secret-two', method: 'client_secret_basic' }],
  [
    { clientId: 'gw-three-acme', clientSecret: 'secret-three-acme', method: 'client_secret_basic' },
    { clientId: 'gw-three-globex', clientSecret: 'secret-three-globex', method: 'client_secret_basic' },
  ],
  [{ clientId: 'someone-else', clientSecret: 'not-ours', method: 'client_secret_basic' }],
];

/** The client id an authorization server knows the gateway by, for one enterprise's users (what the IdP writes into ID-JAGs). */
function clientIdAt(asIndex: number, enterprise: Enterprise): string {
  if (asIndex === 2) return `gw-three-${enterprise}`;
  return registered[asIndex]![0]!.clientId;
}

beforeAll(async () => {
  const started = await Promise.all([...ENTERPRISES, 'rogue'].map(() => startIdp()));
  idps = { acme: started[0]!, globex: started[1]!, initech: started[2]! };
  rogue = started[3]!;
  const trusted = started.map(({ issuer, publicKey }) => ({ issuer, publicKey }));
  as = await Promise.all(registered.map((clients) => startAuthorizationServer({ trustedIdp: trusted, clients })));
  ENTERPRISES.forEach((enterprise) => {
    idps[enterprise].jagClientId = (audience) => clientIdAt(as.findIndex((a) => a.issuer === audience), enterprise);
  });
  // Servers 0 and 1 share AS 0; server 2 is behind AS 1, server 3 behind AS 2, server 4 behind AS 3 (unregistered).
  const behind = [0, 0, 1, 2, 3];
  mcp = await Promise.all(behind.map((a) => startMcpServer({ authorizationServer: as[a]! })));
  as.forEach((server, a) => (server.allowedResources = mcp.filter((_, m) => behind[m] === a).map((m) => m.resource)));
});
afterAll(async () => {
  await Promise.all([...Object.values(idps), rogue, ...as, ...mcp].map((server) => server.close()));
});

function reset(): void {
  for (const server of [...Object.values(idps), rogue, ...as, ...mcp]) server.reset();
}

const context = new AsyncLocalStorage<{ user: string; enterprise: Enterprise | 'rogue'; sub: string }>();

function gatewayOptions(overrides: Partial<CrossAppAccessEngineOptions> = {}): CrossAppAccessEngineOptions {
  const client: ClientOptions[] = [
    { issuer: as[0]!.issuer, clientId: 'gw-one', clientSecret: 'secret-one' },
    { issuer: as[1]!.issuer, clientId: 'gw-two', clientSecret: 'secret-two' },
    { issuer: as[2]!.issuer, idp: idps.acme.issuer, clientId: 'gw-three-acme', clientSecret: 'secret-three-acme' },
    { issuer: as[2]!.issuer, idp: idps.globex.issuer, clientId: 'gw-three-globex', clientSecret: 'secret-three-globex' },
  ];
  return { idp: ENTERPRISES.map((e) => ({ issuer: idps[e].issuer, clientId: idps[e].clientId })), client, ...overrides };
}

function gatewayFetch(xaa: CrossAppAccess): CrossAppAccessFetch {
  return xaa.fetch(fetch, {
    user: () => context.getStore()?.user,
    idToken: () => {
      const { enterprise, sub } = context.getStore()!;
      return (enterprise === 'rogue' ? rogue : idps[enterprise]).mintIdToken({ sub });
    },
  });
}

/** The client id a token request authenticated as (HTTP Basic, RFC 6749 §2.3.1). */
function basicClientId(authorization: unknown): string {
  return decodeURIComponent(Buffer.from(String(authorization).replace(/^Basic /, ''), 'base64').toString().split(':')[0]!);
}

describe('one engine, three enterprises, five servers behind four authorization servers', () => {
  it.each([
    ['learned from 401s', false],
    ['configured as a list of resources', true],
  ])('resources %s: every answer names its own user and enterprise; one exchange and one grant per (user, server), with the right registration', async (_, configured) => {
    reset();
    const reachable = mcp.slice(0, 4);
    const xaa = new CrossAppAccess(gatewayOptions(configured ? { resource: reachable.map((m) => m.resource) } : {}));
    const authedFetch = gatewayFetch(xaa);
    // The same user id in every enterprise: three different people.
    const users = ENTERPRISES.flatMap((enterprise) => ['42', '7', '1001'].map((sub) => ({ enterprise, sub, user: `${enterprise}:${sub}` })));
    const calls = shuffle(
      users.flatMap((u) => reachable.map((server, m) => ({ ...u, server, m }))).filter((c) => !(c.m === 3 && c.enterprise === 'initech')),
      mulberry32(18),
    );
    await inBatches(calls, 12, async ({ user, enterprise, sub, server, m }) => {
      const answer = await context.run({ user, enterprise, sub }, () => whoamiThrough(server.url, authedFetch, m % 2 === 1));
      expect(answer).toMatch(new RegExp(`^sub=${sub} .* idp=${idps[enterprise].issuer}$`));
    });

    // Each enterprise's IdP exchanged exactly its own users' ID tokens, once per (user, server), each for the right audience.
    for (const enterprise of ENTERPRISES) {
      const exchanges = idps[enterprise].requests.filter((r) => r.method === 'POST');
      const expected = calls.filter((c) => c.enterprise === enterprise);
      expect(exchanges).toHaveLength(expected.length);
      expect(new Set(exchanges.map((r) => `${decodeJwt(r.form.subject_token!)?.claims.sub} ${r.form.resource}`)).size).toBe(expected.length);
      for (const r of exchanges) expect(r.form.audience).toBe(as[[0, 0, 1, 2][mcp.findIndex((m) => m.resource === r.form.resource)]!]!.issuer);
    }
    // Each authorization server granted once per (user, server) behind it, authenticated with the registration for the user's enterprise.
    as.slice(0, 3).forEach((server, a) => {
      const grants = server.requests.filter((r) => r.method === 'POST');
      expect(grants).toHaveLength(calls.filter((c) => [0, 0, 1, 2][c.m] === a).length);
      for (const grant of grants) {
        const enterprise = ENTERPRISES.find((e) => decodeJwt(grant.form.assertion!)?.claims.iss === idps[e].issuer)!;
        expect(basicClientId(grant.headers.authorization)).toBe(clientIdAt(a, enterprise));
      }
    });
    // Discovery is per engine: each server's metadata once, each authorization server's once, each IdP's once at most.
    for (const server of reachable) expect(server.counters.prm).toBeLessThanOrEqual(1);
    for (const server of as.slice(0, 3)) expect(server.counters.metadata).toBe(1);
    for (const enterprise of ENTERPRISES) expect(idps[enterprise].counters.metadata).toBeLessThanOrEqual(2);
  }, 120_000);

  it('a configured server whose authorization server holds no registration fails closed with issuer_not_allowed: no ID token to any IdP, nothing to that server', async () => {
    reset();
    const authedFetch = gatewayFetch(new CrossAppAccess(gatewayOptions({ resource: mcp.map((m) => m.resource) })));
    const error = await context.run({ user: 'acme:42', enterprise: 'acme', sub: '42' }, () => authedFetch(mcp[4]!.url, listToolsInit())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject({ code: 'issuer_not_allowed', stage: 'discovery' });
    expect((error as Error).message).toContain(as[3]!.issuer);
    for (const idp of Object.values(idps)) expect(idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(as[3]!.requests).toEqual([]);
    expect(mcp[4]!.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('without resource, such a server is not ours: its 401 comes back as it came, with a diagnostic, and nothing is sent', async () => {
    reset();
    const diagnostics: string[] = [];
    const xaa = new CrossAppAccess(gatewayOptions({ onEvent: (e) => e.type === 'diagnostic' && diagnostics.push(e.message) }));
    const response = await context.run({ user: 'acme:42', enterprise: 'acme', sub: '42' }, () => gatewayFetch(xaa)(mcp[4]!.url, listToolsInit()));
    expect(response.status).toBe(401);
    expect(diagnostics.some((m) => m.includes('issuer_not_allowed') && m.includes(as[3]!.issuer))).toBe(true);
    for (const idp of Object.values(idps)) expect(idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(as[3]!.requests).toEqual([]);
  });

  it("an enterprise the authorization server did not register the gateway for fails closed: the ID token was read, never sent", async () => {
    reset();
    const authedFetch = gatewayFetch(new CrossAppAccess(gatewayOptions({ resource: mcp[3]!.resource })));
    const error = await context.run({ user: 'initech:42', enterprise: 'initech', sub: '42' }, () => authedFetch(mcp[3]!.url, listToolsInit())).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'issuer_not_allowed' });
    expect((error as Error).message).toContain(idps.initech.issuer);
    expect(idps.initech.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(as[2]!.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });

  it('an ID token from an IdP not listed is refused with idp_not_allowed before it is sent anywhere', async () => {
    reset();
    const authedFetch = gatewayFetch(new CrossAppAccess(gatewayOptions({ resource: mcp[0]!.resource })));
    const error = await context.run({ user: 'rogue:42', enterprise: 'rogue', sub: '42' }, () => authedFetch(mcp[0]!.url, listToolsInit())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject({ code: 'idp_not_allowed', stage: 'id_token' });
    expect((error as Error).message).toContain(rogue.issuer);
    for (const idp of [...Object.values(idps), rogue]) expect(idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
    for (const server of as) expect(server.requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(mcp[0]!.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('one user key used by two enterprises in one engine is refused (user_mismatch) once the second enterprise\'s ID token is read', async () => {
    reset();
    const authedFetch = gatewayFetch(new CrossAppAccess(gatewayOptions({ resource: [mcp[0]!.resource, mcp[2]!.resource] })));
    const first = await context.run({ user: '42', enterprise: 'acme', sub: '42' }, () => authedFetch(mcp[0]!.url, listToolsInit()));
    expect(first.status).toBe(200);
    // Another enterprise's person under the same key, where a new token is needed: refused, nothing sent.
    const error = await context.run({ user: '42', enterprise: 'globex', sub: '42' }, () => authedFetch(mcp[2]!.url, listToolsInit())).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'user_mismatch' });
    expect(idps.globex.requests.filter((r) => r.method === 'POST')).toEqual([]);
    // The key is refused from then on, the warm path too: acme's token never reaches globex's "42".
    const warm = await context.run({ user: '42', enterprise: 'globex', sub: '42' }, () => authedFetch(mcp[0]!.url, listToolsInit())).catch((e: unknown) => e);
    expect(warm).toMatchObject({ code: 'user_mismatch' });
  });

  describe('with the IdP named per request (idp), one key at two IdPs is two users', () => {
    const named = (xaa: CrossAppAccess) =>
      xaa.fetch(fetch, {
        user: () => context.getStore()?.sub,
        idp: () => {
          const enterprise = context.getStore()?.enterprise;
          return enterprise === undefined ? undefined : (enterprise === 'rogue' ? rogue : idps[enterprise]).issuer;
        },
        idToken: ({ user }) => {
          const { enterprise } = context.getStore()!;
          return (enterprise === 'rogue' ? rogue : idps[enterprise]).mintIdToken({ sub: user });
        },
      });

    it('"42" at acme and "42" at globex each get their own token, warm or not', async () => {
      reset();
      const authedFetch = named(new CrossAppAccess(gatewayOptions({ resource: mcp[0]!.resource })));
      for (let round = 0; round < 2; round++) {
        for (const enterprise of ['acme', 'globex'] as const) {
          const answer = await context.run({ user: '42', enterprise, sub: '42' }, () => whoamiThrough(mcp[0]!.url, authedFetch, round === 1));
          expect(answer).toMatch(new RegExp(`^sub=42 .* idp=${idps[enterprise].issuer}$`));
        }
      }
      expect(idps.acme.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect(idps.globex.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    });

    it('an ID token from another IdP than the one named is refused before it is sent; an IdP not configured is refused at the request', async () => {
      reset();
      const xaa = new CrossAppAccess(gatewayOptions({ resource: mcp[0]!.resource }));
      const mismatched = xaa.fetch(fetch, { user: '42', idp: idps.acme.issuer, idToken: () => idps.globex.mintIdToken({ sub: '42' }) });
      await expect(mismatched(mcp[0]!.url, listToolsInit())).rejects.toMatchObject({ code: 'idp_not_allowed', stage: 'id_token' });
      const unknown = xaa.fetch(fetch, { user: () => '42', idp: () => rogue.issuer, idToken: () => rogue.mintIdToken({ sub: '42' }) });
      await expect(unknown(mcp[0]!.url, listToolsInit())).rejects.toMatchObject({ code: 'idp_not_allowed', stage: 'request' });
      for (const idp of [...Object.values(idps), rogue]) expect(idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
      // The key was not claimed by the wrong IdP's token: acme's own is then served.
      const right = xaa.fetch(fetch, { user: '42', idp: idps.acme.issuer, idToken: () => idps.acme.mintIdToken({ sub: '42' }) });
      expect((await right(mcp[0]!.url, listToolsInit())).status).toBe(200);
    });

    it('forget(user) signs the key out at every IdP', async () => {
      reset();
      const xaa = new CrossAppAccess(gatewayOptions({ resource: mcp[0]!.resource }));
      const authedFetch = named(xaa);
      for (const enterprise of ['acme', 'globex'] as const) await context.run({ user: '42', enterprise, sub: '42' }, () => authedFetch(mcp[0]!.url, listToolsInit()));
      await xaa.forget('42');
      for (const enterprise of ['acme', 'globex'] as const) await context.run({ user: '42', enterprise, sub: '42' }, () => authedFetch(mcp[0]!.url, listToolsInit()));
      expect(idps.acme.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
      expect(idps.globex.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
    });
  });
});

describe('a user resolver that reads the call (as Mastra passes its requestContext third)', () => {
  it('is given the fetch call\'s arguments: each call is its own user, and one without a context fails closed', async () => {
    const xaa = new CrossAppAccess(gatewayOptions({ resource: mcp[0]!.resource }));
    type Context = { userId: string; idpIssuer: string };
    const framework = xaa.fetch(fetch, {
      user: (_input: unknown, _init: unknown, ctx?: Context) => ctx?.userId,
      idp: (_input: unknown, _init: unknown, ctx?: Context) => ctx?.idpIssuer,
      idToken: ({ user }) => (user.startsWith('a') ? idps.acme : idps.globex).mintIdToken({ sub: user }),
    }) as unknown as (url: string, init: RequestInit, ctx?: Context) => Promise<Response>;
    const whoami = { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }) };
    const answers = await Promise.all([
      framework(mcp[0]!.url, whoami, { userId: 'ann', idpIssuer: idps.acme.issuer }),
      framework(mcp[0]!.url, whoami, { userId: 'gus', idpIssuer: idps.globex.issuer }),
    ]);
    expect(await answers[0]!.text()).toContain(`sub=ann scopes=`);
    expect(await answers[1]!.text()).toContain(`sub=gus scopes=`);
    await expect(framework(mcp[0]!.url, whoami)).rejects.toMatchObject({ code: 'unknown_user' });
  });
});
