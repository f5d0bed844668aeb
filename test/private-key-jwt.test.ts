/**
 * `private_key_jwt` client authentication on both legs (RFC 7523 §2.2
 * and §3; RFC 7521 §4.2): real loopback IdP, AS and MCP server whose token endpoints verify every
 * client assertion with jose, through the public API only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  SignJWT,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  type JWK,
  type JWTPayload,
} from 'jose';
import {
  ConfigurationError,
  CrossAppAccessError,
  withCrossAppAccess,
  type CrossAppAccessEvent,
  type CrossAppAccessOptions,
} from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { Recorder, expectCaaError, jsonReply } from './helpers/errors.js';
import { startStack, type Stack, type StackOptions } from './servers/stack.js';
import { CLIENT_ASSERTION_TYPE, type RecordedClientAssertion } from './servers/idp.js';
import { GRANT_JWT_BEARER } from './servers/authorization-server.js';
import { GRANT_TOKEN_EXCHANGE } from './servers/idp.js';
import type { RecordedRequest } from './servers/http-util.js';

type Alg = 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA';

interface TestKey {
  /** Extractable private CryptoKey. */
  privateKey: CryptoKey;
  privateJwk: JWK;
  publicJwk: JWK;
  pem: string;
}

async function makeKey(alg: Alg): Promise<TestKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return {
    privateKey: pair.privateKey as CryptoKey,
    privateJwk: await exportJWK(pair.privateKey),
    publicJwk: await exportJWK(pair.publicKey),
    pem: await exportPKCS8(pair.privateKey),
  };
}

const AS_CLIENT_ID = 'mcp-client';
const stacks: Stack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.close()));
});

async function stackWith(options: StackOptions): Promise<Stack> {
  const stack = await startStack(options);
  stacks.push(stack);
  return stack;
}

/** A stack whose AS registers `mcp-client` for private_key_jwt with `key`. */
function asKeyStack(key: TestKey, as: StackOptions['as'] = {}, rest: Omit<StackOptions, 'as'> = {}) {
  return stackWith({ ...rest, as: { clients: [{ clientId: AS_CLIENT_ID, method: 'private_key_jwt', publicJwk: key.publicJwk }], ...as } });
}

function wrapper(stack: Stack, overrides: Partial<CrossAppAccessOptions> = {}) {
  const events: CrossAppAccessEvent[] = [];
  const fetchWithAuth = withCrossAppAccess(
    (url, init) => globalThis.fetch(url, init),
    stackOptions(stack, { retry: { baseDelay: 0 }, ...overrides, onEvent: (e) => events.push(e) }),
  );
  return { call: (id = 1) => fetchWithAuth(stack.mcp.url, listToolsInit(id)), events };
}

/** Token POSTs a server received. */
function tokenPosts(requests: RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token'));
}

/** Checks one token request used private_key_jwt and nothing else. */
function expectKeyAuthRequest(r: RecordedRequest, clientId: string) {
  expect(r.headers.authorization, 'no Authorization header').toBeUndefined();
  expect(r.form.client_secret, 'no client_secret').toBeUndefined();
  expect(r.form.client_assertion_type).toBe(CLIENT_ASSERTION_TYPE);
  expect(typeof r.form.client_assertion).toBe('string');
  expect(r.form.client_id).toBe(clientId);
}

/** Checks a recorded assertion's header and claims. */
function expectAssertion(
  a: RecordedClientAssertion | undefined,
  expected: { alg: string; kid?: string; clientId: string; aud: string },
) {
  expect(a, 'an assertion was received').toBeDefined();
  expect(a!.accepted, a!.rejection).toBe(true);
  const header = { ...a!.header };
  expect(header.alg).toBe(expected.alg);
  expect(header.typ).toBe('JWT');
  if (expected.kid !== undefined) expect(header.kid).toBe(expected.kid);
  else expect(header.kid).toBeUndefined();
  const c = a!.claims;
  expect(c.iss).toBe(expected.clientId);
  expect(c.sub).toBe(expected.clientId);
  expect(c.aud).toBe(expected.aud);
  expect(typeof c.jti).toBe('string');
  expect((c.jti as string).length).toBeGreaterThanOrEqual(16);
  expect(c.exp! - c.iat!).toBe(60);
  expect(Math.abs(c.iat! - Date.now() / 1000)).toBeLessThan(10);
}

async function expectOk(res: Response) {
  expect(res.status, await res.clone().text()).toBe(200);
}

// ---------------------------------------------------------------------------------------------
// The fixtures themselves (independent of the package).
// ---------------------------------------------------------------------------------------------

describe('fixtures: private_key_jwt verification at the loopback servers', () => {
  async function assertion(
    key: CryptoKey,
    claims: JWTPayload,
    { alg = 'ES256', lifetime = 60 }: { alg?: string; lifetime?: number } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: crypto.randomUUID(), iat: now, exp: now + lifetime, ...claims })
      .setProtectedHeader({ alg, typ: 'JWT' })
      .sign(key);
  }
  async function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, body: (await res.json()) as { error: string; error_description: string } };
  }
  // Client authentication passed iff the AS got as far as the missing `assertion` parameter.
  const AS_AUTH_OK = { status: 400, body: { error: 'invalid_request', error_description: 'missing assertion' } };
  const IDP_AUTH_OK = { status: 400, body: { error: 'invalid_request', error_description: 'missing subject_token' } };

  it('AS: advertises private_key_jwt and the signing algs; accepts a valid assertion (aud = issuer or token endpoint)', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key);
    const md = (await (await fetch(`${stack.as.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(md.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt']);
    expect(md.token_endpoint_auth_signing_alg_values_supported).toEqual(['ES256', 'RS256', 'PS256', 'EdDSA']);
    const base = { grant_type: GRANT_JWT_BEARER, client_assertion_type: CLIENT_ASSERTION_TYPE };
    const claims = { iss: AS_CLIENT_ID, sub: AS_CLIENT_ID };
    for (const aud of [stack.as.issuer, stack.as.tokenEndpoint]) {
      const jws = await assertion(key.privateKey, { ...claims, aud });
      expect(await post(stack.as.tokenEndpoint, { ...base, client_assertion: jws })).toEqual(AS_AUTH_OK);
    }
    // client_id, when sent, must match.
    const jws = await assertion(key.privateKey, { ...claims, aud: stack.as.issuer });
    expect(await post(stack.as.tokenEndpoint, { ...base, client_id: AS_CLIENT_ID, client_assertion: jws })).toEqual(AS_AUTH_OK);
    expect(stack.as.clientAssertions.map((a) => a.accepted)).toEqual([true, true, true]);
    expect(stack.as.clientAssertions[0]!.header).toEqual({ alg: 'ES256', typ: 'JWT' });
    expect(stack.as.clientAssertions[0]!.claims.aud).toBe(stack.as.issuer);
  });

  it('AS: rejects replays, bad claims, bad keys and mixed methods', async () => {
    const key = await makeKey('ES256');
    const other = await makeKey('ES256');
    const stack = await asKeyStack(key);
    const url = stack.as.tokenEndpoint;
    const base = { grant_type: GRANT_JWT_BEARER, client_assertion_type: CLIENT_ASSERTION_TYPE };
    const good = { iss: AS_CLIENT_ID, sub: AS_CLIENT_ID, aud: stack.as.issuer };

    const once = await assertion(key.privateKey, good);
    expect((await post(url, { ...base, client_assertion: once })).status).toBe(400); // accepted (missing assertion)
    const replay = await post(url, { ...base, client_assertion: once });
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
    expect(replay.body.error_description).toMatch(/replay/);

    const cases: [string, Promise<string>, number, string][] = [
      ['wrong aud', assertion(key.privateKey, { ...good, aud: 'https://elsewhere.example' }), 401, 'invalid_client'],
      ['wrong iss', assertion(key.privateKey, { ...good, iss: 'someone' }), 401, 'invalid_client'],
      ['wrong sub', assertion(key.privateKey, { ...good, sub: 'someone' }), 401, 'invalid_client'],
      ['expired', assertion(key.privateKey, { ...good, iat: 1000, exp: 1060 }), 401, 'invalid_client'],
      ['lifetime > 300 s', assertion(key.privateKey, good, { lifetime: 600 }), 401, 'invalid_client'],
      ['no jti', assertion(key.privateKey, { ...good, jti: undefined }), 401, 'invalid_client'],
      ['other key', assertion(other.privateKey, good), 401, 'invalid_client'],
    ];
    for (const [name, jws, status, error] of cases) {
      const r = await post(url, { ...base, client_assertion: await jws });
      expect({ name, status: r.status, error: r.body.error }).toEqual({ name, status, error });
    }
    const fresh = () => assertion(key.privateKey, good);
    expect((await post(url, { ...base, client_assertion_type: 'jwt-bearer', client_assertion: await fresh() })).status).toBe(400);
    expect((await post(url, { ...base, client_id: 'other', client_assertion: await fresh() })).body.error).toBe('invalid_client');
    const withSecret = await post(url, { ...base, client_secret: 'x', client_assertion: await fresh() });
    expect(withSecret).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const withBasic = await post(url, { ...base, client_assertion: await fresh() }, { authorization: `Basic ${btoa('mcp-client:x')}` });
    expect(withBasic).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    // A private_key_jwt client cannot use Basic or no authentication.
    expect((await post(url, { grant_type: GRANT_JWT_BEARER, client_id: AS_CLIENT_ID })).body.error).toBe('invalid_client');
  });

  it('AS: the signing alg list is an option; an unlisted alg is rejected', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key, { signingAlgValuesSupported: ['PS256'] });
    const md = (await (await fetch(`${stack.as.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(md.token_endpoint_auth_signing_alg_values_supported).toEqual(['PS256']);
    const jws = await assertion(key.privateKey, { iss: AS_CLIENT_ID, sub: AS_CLIENT_ID, aud: stack.as.issuer });
    const r = await post(stack.as.tokenEndpoint, { grant_type: GRANT_JWT_BEARER, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: jws });
    expect(r).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });

  it('IdP: advertises private_key_jwt; verifies assertions (aud = issuer or token endpoint), rejects replays', async () => {
    const key = await makeKey('ES256');
    const stack = await stackWith({ idp: { clientAuth: 'private_key_jwt', clientPublicJwk: key.publicJwk } });
    const md = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(md.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt']);
    expect(md.token_endpoint_auth_signing_alg_values_supported).toEqual(['ES256', 'RS256', 'PS256', 'EdDSA']);
    const id = stack.idp.clientId;
    const base = { grant_type: GRANT_TOKEN_EXCHANGE, client_assertion_type: CLIENT_ASSERTION_TYPE };
    const url = stack.idp.tokenEndpoint;
    for (const aud of [stack.idp.issuer, stack.idp.tokenEndpoint]) {
      const jws = await assertion(key.privateKey, { iss: id, sub: id, aud });
      expect(await post(url, { ...base, client_id: id, client_assertion: jws })).toEqual(IDP_AUTH_OK);
    }
    const jws = await assertion(key.privateKey, { iss: id, sub: id, aud: stack.idp.issuer });
    expect((await post(url, { ...base, client_assertion: jws })).status).toBe(400);
    expect(await post(url, { ...base, client_assertion: jws })).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await post(url, { ...base, client_assertion: await assertion(key.privateKey, { iss: id, sub: id, aud: 'x' }) })).status).toBe(401);
    expect((await post(url, { grant_type: GRANT_TOKEN_EXCHANGE, client_id: id })).status).toBe(401);
    const both = await post(url, { ...base, client_secret: 's', client_assertion: await assertion(key.privateKey, { iss: id, sub: id, aud: stack.idp.issuer }) });
    expect(both).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(stack.idp.clientAssertions.map((a) => a.accepted)).toEqual([true, true, true, false, false]);
  });
});

// ---------------------------------------------------------------------------------------------
// The package.
// ---------------------------------------------------------------------------------------------

describe('private_key_jwt through withCrossAppAccess (MCP Enterprise-Managed Authorization §7.5.1)', () => {
  it('at the AS (ES256 JWK, kid): request succeeds; assertion header and claims; no secret sent', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk, keyId: 'as-key-1' } });
    await expectOk(await call());
    const posts = tokenPosts(stack.as.requests);
    expect(posts).toHaveLength(1);
    expectKeyAuthRequest(posts[0]!, AS_CLIENT_ID);
    expect(stack.as.clientAssertions).toHaveLength(1);
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES256', kid: 'as-key-1', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
    // The IdP leg kept its default (none).
    expect(stack.idp.clientAssertions).toHaveLength(0);
  });

  it('at the AS without keyId: no kid in the header', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk, authMethod: 'private_key_jwt' } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('at the AS with an issuer path: aud is the metadata issuer', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key, { issuerPath: '/tenant-7' });
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expect(stack.as.issuer).toMatch(/\/tenant-7$/);
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('at the IdP: request succeeds; aud is idp.issuer; no secret sent', async () => {
    const key = await makeKey('ES256');
    const stack = await stackWith({ idp: { clientAuth: 'private_key_jwt', clientPublicJwk: key.publicJwk } });
    const { call } = wrapper(stack, {
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, authMethod: 'private_key_jwt', privateKey: key.privateJwk, keyId: 'idp-key' },
    });
    await expectOk(await call());
    const posts = tokenPosts(stack.idp.requests);
    expect(posts).toHaveLength(1);
    expectKeyAuthRequest(posts[0]!, stack.idp.clientId);
    expectAssertion(stack.idp.clientAssertions[0], { alg: 'ES256', kid: 'idp-key', clientId: stack.idp.clientId, aud: stack.idp.issuer });
    // The AS leg kept Basic.
    expect(tokenPosts(stack.as.requests)[0]!.headers.authorization).toMatch(/^Basic /);
  });

  it('at the IdP configured by token endpoint only: aud is the token endpoint URL', async () => {
    const key = await makeKey('ES256');
    const stack = await stackWith({ idp: { clientAuth: 'private_key_jwt', clientPublicJwk: key.publicJwk } });
    const { call } = wrapper(stack, {
      idp: { tokenEndpoint: stack.idp.tokenEndpoint, clientId: stack.idp.clientId, authMethod: 'private_key_jwt', privateKey: key.privateJwk },
    });
    await expectOk(await call());
    expectAssertion(stack.idp.clientAssertions[0], { alg: 'ES256', clientId: stack.idp.clientId, aud: stack.idp.tokenEndpoint });
  });

  it('on both legs at once, with different keys', async () => {
    const asKey = await makeKey('ES256');
    const idpKey = await makeKey('ES256');
    const stack = await asKeyStack(asKey, {}, { idp: { clientAuth: 'private_key_jwt', clientPublicJwk: idpKey.publicJwk } });
    const { call } = wrapper(stack, {
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, authMethod: 'private_key_jwt', privateKey: idpKey.privateJwk, keyId: 'k-idp' },
      client: { clientId: AS_CLIENT_ID, authMethod: 'private_key_jwt', privateKey: asKey.privateJwk, keyId: 'k-as' },
    });
    await expectOk(await call());
    expectKeyAuthRequest(tokenPosts(stack.idp.requests)[0]!, stack.idp.clientId);
    expectKeyAuthRequest(tokenPosts(stack.as.requests)[0]!, AS_CLIENT_ID);
    expectAssertion(stack.idp.clientAssertions[0], { alg: 'ES256', kid: 'k-idp', clientId: stack.idp.clientId, aud: stack.idp.issuer });
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES256', kid: 'k-as', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
    expect(stack.idp.clientAssertions[0]!.claims.jti).not.toBe(stack.as.clientAssertions[0]!.claims.jti);
  });
});

describe('key formats and algorithms', () => {
  it('a non-extractable CryptoKey', async () => {
    const pair = await generateKeyPair('ES256');
    const stack = await stackWith({
      as: { clients: [{ clientId: AS_CLIENT_ID, method: 'private_key_jwt', publicJwk: await exportJWK(pair.publicKey) }] },
    });
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: pair.privateKey } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('a PEM PKCS#8 string', async () => {
    const key = await makeKey('ES256');
    expect(key.pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.pem } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('EC P-384 → ES384 (when the AS lists it)', async () => {
    const key = await makeKey('ES384');
    const stack = await asKeyStack(key, { signingAlgValuesSupported: ['ES384', 'ES256'] });
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'ES384', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('RSA → RS256 by default', async () => {
    const key = await makeKey('RS256');
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'RS256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('RSA → PS256 when the AS lists only PS256', async () => {
    const key = await makeKey('RS256');
    const stack = await asKeyStack(key, { signingAlgValuesSupported: ['PS256'] });
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'PS256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('RSA PEM with signingAlg PS256', async () => {
    const key = await makeKey('RS256');
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.pem, signingAlg: 'PS256' } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'PS256', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });

  it('Ed25519 → EdDSA', async () => {
    const key = await makeKey('EdDSA');
    expect(key.publicJwk.crv).toBe('Ed25519');
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expectAssertion(stack.as.clientAssertions[0], { alg: 'EdDSA', clientId: AS_CLIENT_ID, aud: stack.as.issuer });
  });
});

describe('a new jti for every assertion', () => {
  it('a second acquisition (after the AS revoked every token) signs a new jti', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call(1));
    stack.as.revokeAll();
    await expectOk(await call(2));
    const accepted = stack.as.clientAssertions.filter((a) => a.accepted);
    expect(accepted).toHaveLength(2);
    expect(accepted[0]!.claims.jti).not.toBe(accepted[1]!.claims.jti);
  });

  it('a retried grant (AS answered 503 once) signs a new jti', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key);
    let failures = 0;
    stack.as.override = (r) =>
      r.method === 'POST' && r.path.endsWith('/token') && failures++ === 0
        ? jsonReply(503, { error: 'temporarily_unavailable' })
        : undefined;
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    const jtis = tokenPosts(stack.as.requests).map((r) => decodeJwt(r.form.client_assertion!).jti);
    expect(jtis).toHaveLength(2);
    expect(jtis[0]).not.toBe(jtis[1]);
    expect(stack.as.clientAssertions).toHaveLength(1);
    expect(stack.as.clientAssertions[0]!.accepted).toBe(true);
  });

  it('a retried token exchange (IdP answered 503 once) signs a new jti', async () => {
    const key = await makeKey('ES256');
    const stack = await stackWith({ idp: { clientAuth: 'private_key_jwt', clientPublicJwk: key.publicJwk } });
    let failures = 0;
    stack.idp.override = (r) =>
      r.method === 'POST' && r.path.endsWith('/token') && failures++ === 0
        ? jsonReply(503, { error: 'temporarily_unavailable' })
        : undefined;
    const { call } = wrapper(stack, {
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, authMethod: 'private_key_jwt', privateKey: key.privateJwk },
    });
    await expectOk(await call());
    const jtis = tokenPosts(stack.idp.requests).map((r) => decodeJwt(r.form.client_assertion!).jti);
    expect(jtis).toHaveLength(2);
    expect(jtis[0]).not.toBe(jtis[1]);
  });
});

describe('choosing private_key_jwt', () => {
  it('privateKey and no authMethod: private_key_jwt when the AS lists it among others', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key, {
      clients: [
        { clientId: 'other-client', clientSecret: 's', method: 'client_secret_basic' },
        { clientId: AS_CLIENT_ID, method: 'private_key_jwt', publicJwk: key.publicJwk },
      ],
    });
    const md = (await (await fetch(`${stack.as.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(md.token_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'private_key_jwt']);
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expectKeyAuthRequest(tokenPosts(stack.as.requests)[0]!, AS_CLIENT_ID);
  });

  it('privateKey and no authMethod: private_key_jwt when the AS lists no methods', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key, { metadataOverrides: { token_endpoint_auth_methods_supported: undefined } });
    const md = (await (await fetch(`${stack.as.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(md).not.toHaveProperty('token_endpoint_auth_methods_supported');
    const { call } = wrapper(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk } });
    await expectOk(await call());
    expectKeyAuthRequest(tokenPosts(stack.as.requests)[0]!, AS_CLIENT_ID);
  });

  it("authMethod 'private_key_jwt' that the AS does not list → unsupported_auth_method, nothing sent", async () => {
    const key = await makeKey('ES256');
    const stack = await stackWith({}); // AS lists client_secret_basic only
    const recorder = new Recorder();
    recorder.add(key.privateJwk.d);
    const fetchWithAuth = withCrossAppAccess(
      recorder.fetch,
      stackOptions(stack, {
        client: { clientId: AS_CLIENT_ID, authMethod: 'private_key_jwt', privateKey: key.privateJwk },
        resource: stack.mcp.resource,
        onEvent: recorder.onEvent,
      }),
    );
    const err = await expectCaaError(
      fetchWithAuth(stack.mcp.url, listToolsInit()),
      { code: 'unsupported_auth_method', stage: 'discovery' },
      recorder,
    );
    expect(err).toBeInstanceOf(CrossAppAccessError);
    expect(tokenPosts(stack.as.requests)).toHaveLength(0);
  });
});

describe('configuration errors', () => {
  /** Builds a wrapper and makes one request; returns the error, from construction or the first request. */
  async function configFailure(stack: Stack, overrides: Partial<CrossAppAccessOptions>): Promise<CrossAppAccessError> {
    let fetchWithAuth;
    try {
      fetchWithAuth = withCrossAppAccess((u, i) => globalThis.fetch(u, i), stackOptions(stack, overrides));
    } catch (err) {
      expect(err).toBeInstanceOf(CrossAppAccessError);
      return err as CrossAppAccessError;
    }
    const err = await fetchWithAuth(stack.mcp.url, listToolsInit()).then(
      (r) => expect.fail(`expected a config error, got status ${r.status}`),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CrossAppAccessError);
    return err as CrossAppAccessError;
  }

  function constructionError(stack: Stack, overrides: Partial<CrossAppAccessOptions>): ConfigurationError {
    try {
      withCrossAppAccess((u, i) => globalThis.fetch(u, i), stackOptions(stack, overrides));
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigurationError);
      return err as ConfigurationError;
    }
    return expect.fail('expected a ConfigurationError at construction');
  }

  it("client.authMethod 'private_key_jwt' without privateKey → ConfigurationError naming client.privateKey", async () => {
    const stack = await stackWith({});
    const err = constructionError(stack, { client: { clientId: AS_CLIENT_ID, authMethod: 'private_key_jwt' } });
    expect({ code: err.code, stage: err.stage, option: err.option }).toEqual({
      code: 'invalid_option',
      stage: 'config',
      option: 'client.privateKey',
    });
    expect(err.message).toContain('client.privateKey');
  });

  it("idp.authMethod 'private_key_jwt' without privateKey → ConfigurationError naming idp.privateKey", async () => {
    const stack = await stackWith({});
    const err = constructionError(stack, {
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, authMethod: 'private_key_jwt' },
    });
    expect({ code: err.code, stage: err.stage, option: err.option }).toEqual({
      code: 'invalid_option',
      stage: 'config',
      option: 'idp.privateKey',
    });
  });

  const OCT_K = 'c3ltbWV0cmljLWhtYWMta2V5LW11c3Qtbm90LWJlLXVzZWQ';
  it.each([
    ['client', { kty: 'oct', k: OCT_K }],
    ['idp', { kty: 'oct', k: OCT_K, alg: 'HS256' }],
  ])('%s.privateKey as a symmetric (oct) JWK → invalid_option naming the option, key not quoted', async (where, jwk) => {
    const stack = await stackWith({});
    const overrides: Partial<CrossAppAccessOptions> =
      where === 'client'
        ? { client: { clientId: AS_CLIENT_ID, privateKey: jwk } }
        : { idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, authMethod: 'private_key_jwt', privateKey: jwk } };
    const err = await configFailure(stack, overrides);
    expect({ code: err.code, stage: err.stage }).toEqual({ code: 'invalid_option', stage: 'config' });
    expect(err.message).toContain(`${where}.privateKey`);
    expect(err.message).not.toContain(OCT_K);
    expect(JSON.stringify(err)).not.toContain(OCT_K);
    expect(tokenPosts(stack.as.requests)).toHaveLength(0);
  });

  it('client.privateKey as a public JWK → invalid_option naming the option', async () => {
    const key = await makeKey('ES256');
    const stack = await asKeyStack(key);
    const err = await configFailure(stack, { client: { clientId: AS_CLIENT_ID, privateKey: key.publicJwk } });
    expect({ code: err.code, stage: err.stage }).toEqual({ code: 'invalid_option', stage: 'config' });
    expect(err.message).toContain('client.privateKey');
    expect(tokenPosts(stack.as.requests)).toHaveLength(0);
  });
});

describe('SEC: the private key never appears in errors or events', () => {
  it('an assertion the AS rejects (wrong registered key): 401 invalid_client, no d, no assertion quoted', async () => {
    const key = await makeKey('ES256');
    const registered = await makeKey('ES256');
    const stack = await asKeyStack(registered);
    const recorder = new Recorder();
    recorder.add(key.privateJwk.d);
    const fetchWithAuth = withCrossAppAccess(
      recorder.fetch,
      stackOptions(stack, {
        client: { clientId: AS_CLIENT_ID, privateKey: key.privateJwk, keyId: 'kid-1' },
        onEvent: recorder.onEvent,
        retry: { baseDelay: 0 },
      }),
    );
    const err = await expectCaaError(
      fetchWithAuth(stack.mcp.url, listToolsInit()),
      { code: 'oauth_error', stage: 'jwt_bearer', status: 401, error: 'invalid_client' },
      recorder,
    );
    expect(String(err.stack)).not.toContain(key.privateJwk.d!);
    expect(stack.as.clientAssertions[0]!.accepted).toBe(false);
  });

  it('a successful run on both legs: no d (nor PEM body) in any event', async () => {
    const asKey = await makeKey('ES256');
    const idpKey = await makeKey('RS256');
    const stack = await asKeyStack(asKey, {}, { idp: { clientAuth: 'private_key_jwt', clientPublicJwk: idpKey.publicJwk } });
    const { call, events } = wrapper(stack, {
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, authMethod: 'private_key_jwt', privateKey: idpKey.pem },
      client: { clientId: AS_CLIENT_ID, privateKey: asKey.privateJwk },
    });
    await expectOk(await call());
    expect(events.length).toBeGreaterThan(0);
    const text = JSON.stringify(events);
    expect(text).not.toContain(asKey.privateJwk.d!);
    expect(text).not.toContain(idpKey.privateJwk.d!);
    const pemBody = idpKey.pem.split('\n')[1]!;
    expect(text).not.toContain(pemBody);
    for (const a of [...stack.idp.clientAssertions, ...stack.as.clientAssertions]) {
      expect(text).not.toContain(a.jws);
      expect(a.accepted).toBe(true);
    }
    expect(decodeProtectedHeader(stack.idp.clientAssertions[0]!.jws).alg).toBe('RS256');
  });
});
