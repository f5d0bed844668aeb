/**
 * An attacker's review of "one engine for a whole gateway": lists of IdPs and registrations, the
 * per-request `idp`, users per IdP, the ID token read to learn a user's IdP. Against the real
 * loopback IdPs, authorization servers and MCP servers.
 *
 * Each DEFECT comment names an attack and the rule that stops it (each of those tests failed
 * before its rule was in place); the other tests are attacks refused by design.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent, request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, CrossAppAccessError, type ClientOptions, type CrossAppAccessEngineOptions } from '../src/index.js';
import { crossAppAccessInterceptor } from '../src/undici.js';
import { decodeJwt } from '../src/oauth/jwt.js';
import { jsonRpc, listToolsInit, MCP_HEADERS } from './helpers/stack-options.js';
import { startAuthorizationServer, type AuthorizationServer } from './servers/authorization-server.js';
import { startIdp, type Idp } from './servers/idp.js';
import { startMcpServer, type McpTestServer } from './servers/mcp-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let globex: Idp;
let rogue: Idp;
let acme: Idp;
const closers: Array<{ close(): Promise<unknown> }> = [];
beforeEach(async () => {
  [globex, rogue] = await Promise.all([startIdp(), startIdp()]);
  stack = await startStack({ moreIdps: [globex] });
  acme = stack.idp;
});
afterEach(async () => {
  await Promise.all([stack.close(), globex.close(), rogue.close(), ...closers.splice(0).map((c) => c.close())]);
});

const generic: ClientOptions = { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret };

/** One engine for Acme's and Globex's users, one registration at the stack's authorization server. */
function gateway(overrides: Partial<CrossAppAccessEngineOptions> = {}): CrossAppAccess {
  return new CrossAppAccess({
    idp: [acme, globex].map((idp) => ({ issuer: idp.issuer, clientId: idp.clientId })),
    client: generic,
    resource: stack.mcp.resource,
    ...overrides,
  });
}

/** Who the stack's authorization server issued `token` to. */
function holder(token: string): string {
  const info = stack.as.verifyAccessToken(token);
  return `${info?.sub} ${info?.idp}`;
}

const exchanges = (idp: Idp) => idp.requests.filter((r) => r.method === 'POST');
const WHOAMI = jsonRpc(1, 'tools/call', { name: 'whoami', arguments: {} });

function whoamiText(text: string): string {
  return `${/sub=[^ "]*/.exec(text)?.[0]} ${/idp=[^ "\\]*/.exec(text)?.[0]}`;
}

describe('the undici interceptor with a per-request user and IdP', () => {
  const context = new AsyncLocalStorage<{ user: string; idp: Idp }>();
  function agentFor(xaa: CrossAppAccess, idToken?: (idp: Idp, user: string) => Promise<string>): Agent {
    const agent = new Agent();
    closers.push(agent);
    return agent.compose(
      crossAppAccessInterceptor(xaa, {
        user: () => context.getStore()?.user,
        idp: () => context.getStore()?.idp.issuer,
        idToken: ({ user }) => (idToken ?? ((idp, sub) => idp.mintIdToken({ sub })))(context.getStore()!.idp, user!),
      }),
    ) as Agent;
  }
  async function whoami(agent: Agent, user: string, idp: Idp): Promise<string> {
    return context.run({ user, idp }, async () => {
      const answer = await request(stack.mcp.url, { dispatcher: agent, method: 'POST', headers: MCP_HEADERS, body: WHOAMI });
      const text = await answer.body.text();
      return `${answer.statusCode} ${whoamiText(text)}`;
    });
  }

  // DEFECT, fixed (high: one enterprise's user gets another enterprise's access token).
  // Attack: a gateway on undici names each request's IdP (`idp: () => ctx.idpIssuer`), as
  // docs/gateways.md "Keying users across enterprises" says, and so keys users by their id within
  // their enterprise. RequestUsers (src/adapters/undici-users.ts) rebuilds the resolver for a
  // per-request `user` as `{ user, idToken }`, dropping `idp`: every user lands in the engine's
  // un-named map, and Globex's "42" is Acme's "42". Once Acme's 42 holds a token for a server,
  // Globex's 42's request to it takes the warm path (no ID token read, so no identity check) and
  // is sent with Acme's 42's token: the MCP server answers "sub=42 idp=<Acme>". Where a new token is
  // needed instead, the key is refused with user_mismatch for both (cross-enterprise lock-out).
  // The rule: pin the request's IdP along with its user key (read both once per logical request in
  // RequestUsers.keyOf) and pass `idp` to the pinned resolver; a test like this one for the
  // interceptor next to gateway-tenants.test.ts's for fetch.
  it('"42" at Acme and "42" at Globex are two users, as with the fetch adapter', async () => {
    const agent = agentFor(gateway());
    expect(await whoami(agent, '42', acme)).toBe(`200 sub=42 idp=${acme.issuer}`);
    const globexAnswer = await whoami(agent, '42', globex).catch((e: unknown) => (e as CrossAppAccessError).code ?? String(e));
    expect(globexAnswer).toBe(`200 sub=42 idp=${globex.issuer}`);
  });

  // DEFECT, fixed (low–medium: defence in depth lost). Same cause as above: a request naming Acme whose
  // ID-token source hands out a Globex ID token (a session mix-up in the gateway) must be refused
  // with idp_not_allowed before the ID token is sent anywhere (as xaa.fetch does, see
  // gateway-tenants.test.ts); through the interceptor it is exchanged at Globex and the request is
  // signed in as Globex's user. The rule: as above.
  it('an ID token from another IdP than the one the request names is refused, and not sent', async () => {
    const agent = agentFor(gateway(), (_named, sub) => globex.mintIdToken({ sub }));
    const answer = await whoami(agent, '42', acme).catch((e: unknown) => e);
    expect(exchanges(globex)).toEqual([]);
    expect(exchanges(acme)).toEqual([]);
    expect(answer).toBeInstanceOf(Error);
  });

  it('the fetch adapter, by contrast, keeps them apart (the intended behaviour)', async () => {
    const xaa = gateway();
    const gatewayFetch = xaa.fetch(fetch, {
      user: () => context.getStore()?.user,
      idp: () => context.getStore()?.idp.issuer,
      idToken: ({ user }) => context.getStore()!.idp.mintIdToken({ sub: user }),
    });
    for (const idp of [acme, globex]) {
      const text = await context.run({ user: '42', idp }, async () => {
        const answer = await gatewayFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: WHOAMI });
        return answer.text();
      });
      expect(whoamiText(text)).toBe(`sub=42 idp=${idp.issuer}`);
    }
  });
});

describe('one user key, with and without a named IdP', () => {
  // DEFECT, fixed (low–medium: the identity guard bypassed; one person's token handed to another).
  // Attack: the engine keeps a user named with `idp` (Users.byIdp) and the same key without it
  // (Users.plain) as two UserStates, each with its own identity binding — but both build the same
  // token key (partition of the IdP + registration, then the bare user key). A gateway that uses
  // `idp` on its fetch path and forgets it on another (getAccessToken for a websocket, an admin
  // job) — the mistake the identity guard exists to catch — gets, for the un-named key, the token
  // stored for the named one, without any identity check: Mallory, whose own Acme ID token names
  // her, receives Alice's access token. Under one UserState that would be user_mismatch.
  // The rule: make the user part of the token key (and flight key) say which map the state lives in,
  // e.g. `${JSON.stringify([namedIssuer ?? null, key])}`; or resolve a named-IdP lookup and an
  // un-named one to the same UserState when the IdP they end up with is the same.
  it("a key's un-named form never gets the token stored for its named form (getAccessToken)", async () => {
    const xaa = gateway();
    const url = stack.mcp.url;
    const alice = await xaa.getAccessToken({ user: '42', idp: acme.issuer, idToken: () => acme.mintIdToken({ sub: 'alice' }), url });
    expect(holder(alice.token)).toBe(`alice ${acme.issuer}`);
    const mallory = await xaa.getAccessToken({ user: '42', idToken: () => acme.mintIdToken({ sub: 'mallory' }), url }).catch((e: unknown) => e);
    // Refused as a mix-up, or Mallory's own token: never Alice's.
    if (mallory instanceof Error) expect(mallory).toMatchObject({ code: 'user_mismatch' });
    else expect(holder((mallory as { token: string }).token)).toBe(`mallory ${acme.issuer}`);
  });

  it("the same, through fetch: the un-named wrapper's warm path serves the named user's token", async () => {
    const xaa = gateway();
    const named = xaa.fetch(fetch, { user: '42', idp: acme.issuer, idToken: () => acme.mintIdToken({ sub: 'alice' }) });
    const plain = xaa.fetch(fetch, { user: '42', idToken: () => acme.mintIdToken({ sub: 'mallory' }) });
    const who = async (send: typeof fetch) => whoamiText(await (await send(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body: WHOAMI })).text());
    expect(await who(named)).toBe(`sub=alice idp=${acme.issuer}`);
    const answer = await who(plain).catch((e: unknown) => (e as CrossAppAccessError).code);
    expect(answer === 'user_mismatch' || answer === `sub=mallory idp=${acme.issuer}`).toBe(true);
  });
});

describe('the ID token read to learn a user\'s IdP', () => {
  let as2: AuthorizationServer;
  let mcp2: McpTestServer;
  beforeEach(async () => {
    as2 = await startAuthorizationServer({ clients: [DEFAULT_AS_CLIENT], trustedIdp: [acme, globex].map(({ issuer, publicKey }) => ({ issuer, publicKey })) });
    mcp2 = await startMcpServer({ authorizationServer: as2 });
    as2.allowedResources = [mcp2.resource];
    closers.push(mcp2, as2);
  });

  // DEFECT, fixed (low: an expired ID token sent to the IdP; the application not asked for a fresh one).
  // Attack/bug: Acquirer.readAndBindIdp keeps the ID token it read as `preRead`, consumed by the
  // next acquisition. When the resource's registration check fails first (issuer_not_allowed: the
  // server registered the gateway only for another enterprise), `acquire` is never reached and the
  // pre-read ID token stays on the user's acquirer indefinitely. The user's next acquisition, for
  // another server, hours later, sends that stale token as is: past its `exp`, which readSubject
  // otherwise refuses (RFC 7519 §4.1.4) and replaces by asking the application ('rejected').
  // The rule: hand the pre-read subject from bindIdp to the acquisition that follows in the same call
  // (not a field), or drop it when that call fails, or check its expiry again when consuming it.
  it('an ID token read earlier is not sent after its expiry: the next acquisition reads a fresh one', async () => {
    let clock = Date.now();
    const xaa = gateway({
      now: () => clock,
      resource: [stack.mcp.resource, mcp2.resource],
      client: [
        { ...generic, issuer: stack.as.issuer, idp: acme.issuer },
        { ...generic, issuer: as2.issuer },
      ],
    });
    let reads = 0;
    const idToken = () => {
      reads++;
      return globex.mintIdToken({ sub: 'bob', expiresInSeconds: 3600 + Math.round((clock - Date.now()) / 1000) });
    };
    // Globex's user at a server registered only for Acme's users: refused, nothing sent.
    await expect(xaa.getAccessToken({ user: 'bob', idToken, url: stack.mcp.url })).rejects.toMatchObject({ code: 'issuer_not_allowed' });
    expect(exchanges(globex)).toEqual([]);
    // Two hours later, the same user at another server.
    clock += 2 * 3600_000;
    await xaa.getAccessToken({ user: 'bob', idToken, url: mcp2.url }).catch(() => undefined);
    const sent = exchanges(globex).map((r) => decodeJwt(r.form.subject_token!)!.claims.exp as number);
    expect(sent.length).toBeGreaterThan(0);
    for (const exp of sent) expect(exp * 1000).toBeGreaterThan(clock);
    expect(reads).toBe(2);
  });
});

describe('sign-out while a request of the previous holder of the key is under way', () => {
  /** Starts a request for `user` whose ID-token read waits at a gate; resolves once the read began. */
  async function heldRequest(xaa: CrossAppAccess, url: string, sub: string) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const reading = new Promise<void>((resolve) => (entered = resolve));
    const result = xaa.getAccessToken({
      user: 'kiosk',
      idToken: async () => {
        entered();
        await gate;
        return acme.mintIdToken({ sub });
      },
      url,
    });
    await reading;
    return { result, release };
  }

  // DEFECT, fixed (high: one user's access token reaches another user).
  // Attack: on a shared terminal (or any key reused after sign-out) Alice's request is waiting on
  // her ID token (a slow SSO refresh: with several IdPs, Acquirer.bindIdp reads it before anything
  // else). She signs out: forget('kiosk') makes a new UserState for the key, and Bob signs in under
  // it and gets his token, stored under the token key — a string that does not change with the
  // UserState. Alice's request then resumes on her old, no longer current state:
  // Engine.tokenFor reads the store by that same key and hands her Bob's access token (through
  // xaa.fetch, her request is sent to the MCP server as Bob). Flights are per UserState (flightKey
  // adds user.id) and `stored` skips a non-current user's token, but the store *read* is not
  // guarded.
  // The rule: a UserState that is no longer current never reads the store (Engine.tokenFor, warmToken,
  // steppedUpToken, obtainToken): fail closed with a typed error (e.g. `signed_out`), or acquire for
  // it without storing. Alternatively put user.id into the in-process token key.
  it("with two IdPs (forget while the first ID token is read): the previous holder's request never gets the next holder's token", async () => {
    const xaa = gateway();
    const alice = await heldRequest(xaa, stack.mcp.url, 'alice');
    await xaa.forget('kiosk');
    const bob = await xaa.getAccessToken({ user: 'kiosk', idToken: () => acme.mintIdToken({ sub: 'bob' }), url: stack.mcp.url });
    expect(holder(bob.token)).toBe(`bob ${acme.issuer}`);
    alice.release();
    const late = await alice.result.catch((e: unknown) => e);
    // Failing closed, or Alice's own token: never Bob's.
    if (late instanceof Error) expect(late).toBeInstanceOf(CrossAppAccessError);
    else expect(holder((late as { token: string }).token)).toBe(`alice ${acme.issuer}`);
  });

  it("the key's next holder keeps their own token after the previous holder's late request (two IdPs)", async () => {
    const xaa = gateway();
    const alice = await heldRequest(xaa, stack.mcp.url, 'alice');
    await xaa.forget('kiosk');
    const bob = await xaa.getAccessToken({ user: 'kiosk', idToken: () => acme.mintIdToken({ sub: 'bob' }), url: stack.mcp.url });
    alice.release();
    await alice.result.catch(() => undefined);
    const again = await xaa.getAccessToken({ user: 'kiosk', idToken: () => acme.mintIdToken({ sub: 'bob' }), url: stack.mcp.url });
    expect(again.token).toBe(bob.token);
  });
});

describe('attacks refused by design', () => {
  it('an ID token naming a listed IdP but signed by another is refused by that IdP; it claims no other key and reaches no authorization server', async () => {
    const xaa = gateway();
    const url = stack.mcp.url;
    // Mallory mints an ID token with Acme's issuer and Alice's sub, signed with her own key.
    const forged = await rogue.mintIdToken({ iss: acme.issuer, sub: 'alice', aud: acme.clientId });
    const error = await xaa.getAccessToken({ user: 'mallory', idToken: forged, url }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject({ code: 'login_required' });
    expect(stack.as.counters.grant).toBe(0);
    expect(exchanges(globex)).toEqual([]);
    // Alice's own key is untouched: she gets her own token.
    const alice = await xaa.getAccessToken({ user: 'alice', idToken: () => acme.mintIdToken({ sub: 'alice' }), url });
    expect(holder(alice.token)).toBe(`alice ${acme.issuer}`);
  });

  it.each([
    ['a trailing slash', (issuer: string) => `${issuer}/`],
    ['upper case', (issuer: string) => issuer.toUpperCase()],
    ['a NUL appended', (issuer: string) => `${issuer}\u0000`],
  ])('an ID token whose iss differs from a listed issuer by %s is refused with idp_not_allowed, never sent', async (_, spell) => {
    const xaa = gateway();
    const idToken = await acme.mintIdToken({ iss: spell(acme.issuer), sub: 'alice' });
    await expect(xaa.getAccessToken({ user: 'alice', idToken, url: stack.mcp.url })).rejects.toMatchObject({ code: 'idp_not_allowed', stage: 'id_token' });
    expect(exchanges(acme)).toEqual([]);
    expect(exchanges(globex)).toEqual([]);
  });

  it('user keys spelled like partitions (NUL, JSON) are users of their own', async () => {
    const xaa = gateway();
    const url = stack.mcp.url;
    const keys = ['42', '42\u0000', `\u0000${JSON.stringify([acme.issuer])}`, '["42"]'];
    const tokens = await Promise.all(keys.map((user, i) => xaa.getAccessToken({ user, idToken: () => acme.mintIdToken({ sub: `person-${i}` }), url })));
    tokens.forEach((t, i) => expect(holder(t.token)).toBe(`person-${i} ${acme.issuer}`));
  });

  it('a registration for one IdP is never used for another IdP\'s user; a generic one at the same server serves the rest', async () => {
    stack.as.allowedResources = [stack.mcp.resource];
    const xaa = gateway({
      client: [
        { issuer: stack.as.issuer, idp: acme.issuer, clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
        { issuer: stack.as.issuer, clientId: 'generic-client', clientSecret: 'generic-secret' },
      ],
    });
    await xaa.getAccessToken({ user: 'a', idToken: () => acme.mintIdToken({ sub: 'a' }), url: stack.mcp.url });
    // Globex's IdP maps the gateway to the generic registration (the AS does not know it: what counts is what was sent).
    globex.jagClientId = 'generic-client';
    await xaa.getAccessToken({ user: 'g', idToken: () => globex.mintIdToken({ sub: 'g' }), url: stack.mcp.url }).catch(() => undefined);
    const grants = stack.as.requests.filter((r) => r.method === 'POST');
    const clientOf = (r: (typeof grants)[number]) => Buffer.from(String(r.headers.authorization).slice(6), 'base64').toString().split(':')[0];
    const byIdp = grants.map((r) => `${decodeJwt(r.form.assertion!)?.claims.iss} ${clientOf(r)}`);
    expect(byIdp).toEqual([`${acme.issuer} ${DEFAULT_AS_CLIENT.clientId}`, `${globex.issuer} generic-client`]);
  });

  it('a per-request idp naming an IdP not configured fails closed through fetch (nothing sent)', async () => {
    const xaa = gateway();
    const send = xaa.fetch(fetch, { user: () => '42', idp: () => rogue.issuer, idToken: () => rogue.mintIdToken({ sub: '42' }) });
    await expect(send(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'idp_not_allowed' });
    expect(exchanges(rogue)).toEqual([]);
  });
});
