/**
 * Proves the loopback fixtures in test/servers/ behave like the real thing, using plain fetch and
 * the MCP SDK client only (no package code).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startStack, type Stack } from './servers/stack.js';
import { startIdp } from './servers/idp.js';
import { startHttpServer, decodeBasic } from './servers/http-util.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';

/** RFC 6749 §2.3.1 + App. B: each half form-urlencoded (space as %20), then base64. */
function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** Leg 1 (RFC 8693) with the IdP's default `none` client auth. */
async function exchange(s: Stack, idToken: string, extra: Record<string, string> = {}) {
  return postForm(s.idp.tokenEndpoint, {
    grant_type: TOKEN_EXCHANGE,
    requested_token_type: ID_JAG,
    audience: s.as.issuer,
    resource: s.mcp.resource,
    subject_token: idToken,
    subject_token_type: ID_TOKEN,
    client_id: s.idp.clientId,
    ...extra,
  });
}

/** Leg 2 (RFC 7523) with `client_secret_basic`. */
async function redeem(s: Stack, jag: string, extra: Record<string, string> = {}, auth = basic('mcp-client', 'mcp-secret')) {
  return postForm(
    s.as.tokenEndpoint,
    { grant_type: JWT_BEARER, assertion: jag, resource: s.mcp.resource, ...extra },
    { authorization: auth },
  );
}

async function getAccessToken(s: Stack, scope?: string): Promise<string> {
  const idToken = await s.idp.mintIdToken();
  const leg1 = await exchange(s, idToken, scope ? { scope } : {});
  expect(leg1.status).toBe(200);
  const leg2 = await redeem(s, leg1.json.access_token as string, scope ? { scope } : {});
  expect(leg2.status).toBe(200);
  return leg2.json.access_token as string;
}

/** Minimal RFC 9110 auth-param reader, enough for these assertions. */
function challengeParams(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of (header ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/gi)) out[m[1]!.toLowerCase()] = m[2]!.replace(/\\(.)/g, '$1');
  return out;
}

async function connectClient(url: string, token: string) {
  const authFetch: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const client = new Client({ name: 'fixture-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: authFetch }));
  return client;
}

describe('fixture servers', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({
      as: {
        clients: [
          { clientId: 'mcp-client', clientSecret: 'mcp-secret', method: 'client_secret_basic' },
          // A pinned RFC 6749 §2.3.1 Basic vector: space, @, / and + in the secret.
          { clientId: 'desk-agent', clientSecret: 'p@ss word/+1', method: 'client_secret_basic' },
          { clientId: 'post-client', clientSecret: 'post-secret', method: 'client_secret_post' },
        ],
      },
      mcp: { scopesSupported: ['files:read', 'files:write'] },
    });
  });
  afterAll(() => s.close());
  afterEach(() => {
    s.idp.override = undefined;
    s.as.override = undefined;
    s.mcp.override = undefined;
    s.idp.grantScopes = undefined;
    s.mcp.requiredScopes = undefined;
    s.reset();
  });

  describe('discovery documents', () => {
    it('serves IdP OIDC metadata at the root well-known URL', async () => {
      const res = await fetch(`${s.idp.origin}/.well-known/openid-configuration`);
      expect(res.status).toBe(200);
      const md = (await res.json()) as Record<string, unknown>;
      expect(md.issuer).toBe(s.idp.issuer);
      expect(md.token_endpoint).toBe(`${s.idp.issuer}/token`);
      expect(md.grant_types_supported).toContain(TOKEN_EXCHANGE);
      expect(md.token_endpoint_auth_methods_supported).toEqual(['none']);
      const jwks = (await (await fetch(md.jwks_uri as string)).json()) as { keys: unknown[] };
      expect(jwks.keys).toHaveLength(1);
      expect(s.idp.counters.metadata).toBe(1);
    });

    it('serves AS metadata at the RFC 8414 root URL only', async () => {
      const md = (await (await fetch(`${s.as.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
      expect(md).toMatchObject({
        issuer: s.as.issuer,
        token_endpoint: `${s.as.issuer}/token`,
        grant_types_supported: [JWT_BEARER],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        authorization_grant_profiles_supported: ['urn:ietf:params:oauth:grant-profile:id-jag'],
      });
      expect((await fetch(`${s.as.origin}/.well-known/openid-configuration`)).status).toBe(404);
      expect(s.as.counters.metadata).toBe(1);
    });

    it('serves PRM at the path-inserted URL, not the root', async () => {
      const res = await fetch(`${s.mcp.origin}/.well-known/oauth-protected-resource/mcp`);
      expect(await res.json()).toEqual({
        resource: `${s.mcp.origin}/mcp`,
        authorization_servers: [s.as.issuer],
        scopes_supported: ['files:read', 'files:write'],
        bearer_methods_supported: ['header'],
      });
      expect((await fetch(`${s.mcp.origin}/.well-known/oauth-protected-resource`)).status).toBe(404);
      expect(s.mcp.counters.prm).toBe(1);
    });

    it('serves path-issuer metadata at the inserted and appended URLs, never the root', async () => {
      const p = await startStack({ idp: { issuerPath: '/tenant-1' }, as: { issuerPath: 'tenant-7/' } });
      try {
        expect(p.idp.issuer).toBe(`${p.idp.origin}/tenant-1`);
        expect(p.idp.tokenEndpoint).toBe(`${p.idp.origin}/tenant-1/token`);
        expect(p.as.issuer).toBe(`${p.as.origin}/tenant-7`);
        for (const path of ['/.well-known/openid-configuration/tenant-1', '/tenant-1/.well-known/openid-configuration']) {
          const md = (await (await fetch(`${p.idp.origin}${path}`)).json()) as Record<string, unknown>;
          expect(md.issuer).toBe(p.idp.issuer);
        }
        expect((await fetch(`${p.idp.origin}/.well-known/openid-configuration`)).status).toBe(404);
        for (const path of [
          '/.well-known/oauth-authorization-server/tenant-7',
          '/.well-known/openid-configuration/tenant-7',
          '/tenant-7/.well-known/openid-configuration',
        ]) {
          const md = (await (await fetch(`${p.as.origin}${path}`)).json()) as Record<string, unknown>;
          expect(md.issuer).toBe(p.as.issuer);
        }
        expect((await fetch(`${p.as.origin}/.well-known/oauth-authorization-server`)).status).toBe(404);
        expect(await getAccessToken(p)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      } finally {
        await p.close();
      }
    });

    it('honours metadataPaths and metadataOverrides', async () => {
      const idp = await startIdp({
        issuerPath: '/t',
        metadataPaths: ['/t/.well-known/openid-configuration'],
        metadataOverrides: { issuer: 'https://evil.example' },
      });
      try {
        expect((await fetch(`${idp.origin}/.well-known/openid-configuration/t`)).status).toBe(404);
        const md = (await (await fetch(`${idp.origin}/t/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
        expect(md.issuer).toBe('https://evil.example');
      } finally {
        await idp.close();
      }
    });
  });

  describe('full manual flow', () => {
    it('ID token → ID-JAG → access token → MCP tools/list and tools/call', async () => {
      const idToken = await s.idp.mintIdToken({ sub: 'bob' });
      const leg1 = await exchange(s, idToken, { scope: 'files:read' });
      expect(leg1.status).toBe(200);
      expect(leg1.headers.get('cache-control')).toBe('no-store');
      expect(leg1.json).toMatchObject({ issued_token_type: ID_JAG, token_type: 'N_A', expires_in: 300 });
      expect(leg1.json).not.toHaveProperty('scope'); // granted = requested
      const jag = leg1.json.access_token as string;
      expect(decodeProtectedHeader(jag)).toMatchObject({ alg: 'ES256', typ: 'oauth-id-jag+jwt' });
      const claims = decodeJwt(jag);
      expect(claims).toMatchObject({
        iss: s.idp.issuer,
        sub: 'bob',
        aud: s.as.issuer,
        client_id: 'mcp-client',
        resource: s.mcp.resource,
        scope: 'files:read',
      });
      expect(claims.exp! - claims.iat!).toBe(300);
      expect(typeof claims.jti).toBe('string');

      const leg2 = await redeem(s, jag, { scope: 'files:read' });
      expect(leg2.status).toBe(200);
      expect(leg2.json).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'files:read' });
      const token = leg2.json.access_token as string;
      expect(s.as.verifyAccessToken(token)).toMatchObject({
        sub: 'bob',
        clientId: 'mcp-client',
        resource: s.mcp.resource,
        scopes: ['files:read'],
      });

      const client = await connectClient(s.mcp.url, token);
      try {
        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami']);
        const who = await client.callTool({ name: 'whoami', arguments: {} });
        expect(who.content).toEqual([{ type: 'text', text: `sub=bob scopes=files:read idp=${s.idp.issuer}` }]);
        const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
        expect(echo.content).toEqual([{ type: 'text', text: 'hi' }]);
      } finally {
        await client.close();
      }

      expect(s.idp.counters).toEqual({ metadata: 0, exchange: 1 });
      expect(s.as.counters).toEqual({ metadata: 0, grant: 1 });
      expect(s.mcp.counters.unauthorized).toBe(0);
      expect(s.mcp.counters.authorized).toBe(s.mcp.counters.requests);
      expect(s.mcp.requests.map((r) => r.rpcMethod)).toContain('tools/list');
      expect(s.mcp.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
      expect(s.idp.leaks()).toEqual([]);
      expect(s.as.leaks()).toEqual([]);
      expect(s.idp.requests[0]!.form).toMatchObject({ audience: s.as.issuer, resource: s.mcp.resource });
    });

    it('narrows scope at the IdP and returns it; the AS refuses scopes beyond the ID-JAG', async () => {
      s.idp.grantScopes = (req) => req.filter((x) => x !== 'files:write');
      const leg1 = await exchange(s, await s.idp.mintIdToken(), { scope: 'files:read files:write' });
      expect(leg1.json.scope).toBe('files:read');
      const leg2 = await redeem(s, leg1.json.access_token as string, { scope: 'files:read files:write' });
      expect(leg2.status).toBe(400);
      expect(leg2.json.error).toBe('invalid_scope');
    });

    it('returns 403 insufficient_scope when a required scope is missing', async () => {
      s.mcp.requiredScopes = ['files:write'];
      const token = await getAccessToken(s, 'files:read');
      const res = await fetch(s.mcp.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(403);
      const p = challengeParams(res.headers.get('www-authenticate'));
      expect(p).toMatchObject({ error: 'insufficient_scope', scope: 'files:write', resource_metadata: s.mcp.prmUrl });
      expect(s.mcp.counters.forbidden).toBe(1);
    });
  });

  describe('AS strictness', () => {
    it('rejects a replayed ID-JAG with invalid_grant', async () => {
      const jag = (await exchange(s, await s.idp.mintIdToken())).json.access_token as string;
      expect((await redeem(s, jag)).status).toBe(200);
      const again = await redeem(s, jag);
      expect(again.status).toBe(400);
      expect(again.json.error).toBe('invalid_grant');
      expect(again.json.error_description).toMatch(/replay/);
      expect(s.as.counters.grant).toBe(2);
    });

    it('answers a wrong client secret with 401 invalid_client', async () => {
      const jag = (await exchange(s, await s.idp.mintIdToken())).json.access_token as string;
      const res = await redeem(s, jag, {}, basic('mcp-client', 'nope'));
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('invalid_client');
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
    });

    it('decodes Basic halves with decodeURIComponent (RFC 6749 §2.3.1)', async () => {
      const header = basic('desk-agent', 'p@ss word/+1');
      expect(header).toBe('Basic ZGVzay1hZ2VudDpwJTQwc3MlMjB3b3JkJTJGJTJCMQ==');
      expect(decodeBasic(header)).toEqual({ kind: 'basic', clientId: 'desk-agent', clientSecret: 'p@ss word/+1' });
      // `+` stays a literal `+` (not a space), and `%xx` is decoded.
      const raw = (v: string) => `Basic ${Buffer.from(v).toString('base64')}`;
      expect(decodeBasic(raw('a+b:c+d'))).toEqual({ kind: 'basic', clientId: 'a+b', clientSecret: 'c+d' });
      expect(decodeBasic(raw('a:%41%3A'))).toEqual({ kind: 'basic', clientId: 'a', clientSecret: 'A:' });
      expect(decodeBasic(raw('a:%E0%A4%A'))).toEqual({ kind: 'malformed' });
      expect(decodeBasic(raw('no-colon'))).toEqual({ kind: 'malformed' });
      expect(decodeBasic('Bearer x')).toEqual({ kind: 'none' });
      // The AS accepts the correctly encoded header for an awkward secret...
      const p = await startStack({ idp: { jagClientId: 'desk-agent' }, as: { clients: [{ clientId: 'desk-agent', clientSecret: 'p%20q', method: 'client_secret_basic' }] } });
      try {
        const jag = async () => (await exchange(p, await p.idp.mintIdToken())).json.access_token as string;
        expect((await redeem(p, await jag(), {}, basic('desk-agent', 'p%20q'))).status).toBe(200);
        // ...and rejects the raw one, which decodes to "p q".
        expect((await redeem(p, await jag(), {}, raw('desk-agent:p%20q'))).status).toBe(401);
      } finally {
        await p.close();
      }
    });

    it('rejects Basic plus a body secret, the wrong method, and a client_id mismatch', async () => {
      const jag = async () => (await exchange(s, await s.idp.mintIdToken())).json.access_token as string;
      const both = await redeem(s, await jag(), { client_secret: 'mcp-secret' });
      expect([both.status, both.json.error]).toEqual([400, 'invalid_request']);
      // mcp-client is registered for client_secret_basic only.
      const post = await postForm(s.as.tokenEndpoint, {
        grant_type: JWT_BEARER,
        assertion: await jag(),
        client_id: 'mcp-client',
        client_secret: 'mcp-secret',
      });
      expect([post.status, post.json.error]).toEqual([401, 'invalid_client']);
      // post-client authenticates fine, but the ID-JAG names mcp-client.
      const other = await postForm(s.as.tokenEndpoint, {
        grant_type: JWT_BEARER,
        assertion: await jag(),
        client_id: 'post-client',
        client_secret: 'post-secret',
      });
      expect([other.status, other.json.error]).toEqual([400, 'invalid_grant']);
    });

    it('checks typ, audience, resource, grant_type and content type', async () => {
      const now = Math.floor(Date.now() / 1000);
      const good = { iss: s.idp.issuer, sub: 'a', aud: s.as.issuer, client_id: 'mcp-client', resource: s.mcp.resource, iat: now, exp: now + 60 };
      const withJti = () => ({ ...good, jti: crypto.randomUUID() });
      expect((await redeem(s, await s.idp.mintIdJag(withJti()))).status).toBe(200);
      const badTyp = await redeem(s, await s.idp.mintIdJag(withJti(), { typ: 'JWT' }));
      expect(badTyp.json.error).toBe('invalid_grant');
      const badAud = await redeem(s, await s.idp.mintIdJag({ ...withJti(), aud: `${s.as.issuer}/` }));
      expect(badAud.json.error).toBe('invalid_grant');
      const badRes = await redeem(s, await s.idp.mintIdJag(withJti()), { resource: `${s.mcp.resource}/` });
      expect(badRes.json.error).toBe('invalid_grant');
      const otherRes = await redeem(s, await s.idp.mintIdJag({ ...withJti(), resource: 'http://127.0.0.1:1/mcp' }), { resource: 'http://127.0.0.1:1/mcp' });
      expect(otherRes.json.error).toBe('invalid_grant');
      const expired = await redeem(s, await s.idp.mintIdJag({ ...withJti(), exp: now - 10 }));
      expect(expired.json.error).toBe('invalid_grant');
      const grant = await redeem(s, await s.idp.mintIdJag(withJti()), { grant_type: 'client_credentials' });
      expect(grant.json.error).toBe('unsupported_grant_type');
      const json = await fetch(s.as.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('mcp-client', 'mcp-secret') },
        body: JSON.stringify({ grant_type: JWT_BEARER, assertion: await s.idp.mintIdJag(withJti()) }),
      });
      expect(json.status).toBe(400);
    });
  });

  describe('IdP strictness', () => {
    it('validates grant_type, required params and the subject token', async () => {
      const idToken = await s.idp.mintIdToken();
      expect((await exchange(s, idToken, { grant_type: JWT_BEARER })).json.error).toBe('unsupported_grant_type');
      const noResource = await postForm(s.idp.tokenEndpoint, {
        grant_type: TOKEN_EXCHANGE,
        requested_token_type: ID_JAG,
        audience: s.as.issuer,
        subject_token: idToken,
        subject_token_type: ID_TOKEN,
      });
      expect([noResource.status, noResource.json.error]).toEqual([400, 'invalid_request']);
      expect((await exchange(s, idToken, { requested_token_type: 'urn:ietf:params:oauth:token-type:access_token' })).json.error).toBe('invalid_request');
      expect((await exchange(s, idToken, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' })).json.error).toBe('invalid_request');
      expect((await exchange(s, await s.idp.mintIdToken({ expiresInSeconds: -60 }))).json.error).toBe('invalid_grant');
      expect((await exchange(s, await s.idp.mintIdToken({ aud: 'someone-else' }))).json.error).toBe('invalid_grant');
      expect((await exchange(s, await s.idp.mintIdToken({ iss: 'https://other.example' }))).json.error).toBe('invalid_grant');
      const wrongClient = await exchange(s, idToken, { client_id: 'other' });
      expect([wrongClient.status, wrongClient.json.error]).toEqual([401, 'invalid_client']);
      expect(s.idp.counters.exchange).toBe(8);
    });

    it('enforces confidential client auth when configured', async () => {
      const p = await startStack({ idp: { clientAuth: 'client_secret_basic', clientSecret: 's3cret' } });
      try {
        const idToken = await p.idp.mintIdToken();
        const none = await exchange(p, idToken);
        expect([none.status, none.json.error]).toEqual([401, 'invalid_client']);
        const good = await postForm(
          p.idp.tokenEndpoint,
          {
            grant_type: TOKEN_EXCHANGE,
            requested_token_type: ID_JAG,
            audience: p.as.issuer,
            resource: p.mcp.resource,
            subject_token: idToken,
            subject_token_type: ID_TOKEN,
          },
          { authorization: basic('idp-client', 's3cret') },
        );
        expect(good.status).toBe(200);
        const both = await postForm(
          p.idp.tokenEndpoint,
          { grant_type: TOKEN_EXCHANGE, client_secret: 's3cret' },
          { authorization: basic('idp-client', 's3cret') },
        );
        expect([both.status, both.json.error]).toEqual([400, 'invalid_request']);
      } finally {
        await p.close();
      }
    });

    it('records forbidden headers and applies the override hook', async () => {
      s.idp.override = ({ form }) =>
        form.scope === 'html' ? { status: 502, headers: { 'content-type': 'text/html' }, body: '<h1>Bad gateway</h1>' } : undefined;
      const res = await fetch(s.idp.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: 'sid=1', 'mcp-protocol-version': '2025-11-25', authorization: 'Bearer leak' },
        body: new URLSearchParams({ scope: 'html' }),
      });
      expect(res.status).toBe(502);
      expect(await res.text()).toBe('<h1>Bad gateway</h1>');
      expect(s.idp.counters.exchange).toBe(1);
      expect(s.idp.leaks()).toEqual(['cookie', 'mcp-protocol-version', 'authorization-bearer']);
    });

    it('caps request bodies with a 413', async () => {
      const res = await fetch(s.idp.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `subject_token=${'a'.repeat(200_000)}`,
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
    });
  });

  describe('MCP server', () => {
    it('answers 401 with a parseable resource_metadata and no error when no token is sent', async () => {
      const res = await fetch(s.mcp.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(401);
      const header = res.headers.get('www-authenticate')!;
      expect(header).toMatch(/^Bearer /);
      const p = challengeParams(header);
      expect(p.error).toBeUndefined();
      expect(p.resource_metadata).toBe(`${s.mcp.origin}/.well-known/oauth-protected-resource/mcp`);
      const prm = (await (await fetch(p.resource_metadata!)).json()) as { resource: string };
      expect(prm.resource).toBe(s.mcp.url);
      expect(s.mcp.counters).toMatchObject({ requests: 1, unauthorized: 1, authorized: 0, prm: 1 });
    });

    it('rejects unknown, revoked and wrong-resource tokens with invalid_token', async () => {
      const call = (token: string) =>
        fetch(s.mcp.url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        });
      const unknown = await call('not-a-token');
      expect(unknown.status).toBe(401);
      expect(challengeParams(unknown.headers.get('www-authenticate'))).toMatchObject({ error: 'invalid_token', resource_metadata: s.mcp.prmUrl });
      const other = s.as.issueAccessToken({ sub: 'a', clientId: 'mcp-client', resource: 'http://127.0.0.1:1/mcp', scopes: [] });
      expect((await call(other)).status).toBe(401);
      const token = await getAccessToken(s);
      expect((await call(token)).status).toBe(200);
      s.as.revoke(token);
      expect((await call(token)).status).toBe(401);
      const expired = s.as.issueAccessToken({ sub: 'a', clientId: 'mcp-client', resource: s.mcp.resource, scopes: [], ttlSeconds: -1 });
      expect((await call(expired)).status).toBe(401);
    });

    it('serves /public without auth and records every Authorization header', async () => {
      const res = await fetch(`${s.mcp.origin}/public`);
      expect(await res.text()).toBe('public');
      await fetch(`${s.mcp.origin}/public`, { headers: { authorization: 'Bearer x' } });
      expect(s.mcp.requests.map((r) => r.authorization)).toEqual([undefined, 'Bearer x']);
    });

    it('header-only PRM is reachable only through the challenge', async () => {
      const p = await startStack({ mcp: { prm: 'header-only', path: '/team-a/mcp' } });
      try {
        const res = await fetch(p.mcp.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        const url = challengeParams(res.headers.get('www-authenticate')).resource_metadata!;
        expect(url).toBe(`${p.mcp.origin}/meta/prm`);
        expect(((await (await fetch(url)).json()) as { resource: string }).resource).toBe(`${p.mcp.origin}/team-a/mcp`);
        expect((await fetch(`${p.mcp.origin}/.well-known/oauth-protected-resource/team-a/mcp`)).status).toBe(404);
        expect((await fetch(`${p.mcp.origin}/.well-known/oauth-protected-resource`)).status).toBe(404);
      } finally {
        await p.close();
      }
    });

    it('root PRM mode and resourceOverride', async () => {
      const p = await startStack({ mcp: { prm: 'root', resourceOverride: 'https://elsewhere.example/mcp' } });
      try {
        const prm = (await (await fetch(`${p.mcp.origin}/.well-known/oauth-protected-resource`)).json()) as { resource: string };
        expect(prm.resource).toBe('https://elsewhere.example/mcp');
        expect((await fetch(`${p.mcp.origin}/.well-known/oauth-protected-resource/mcp`)).status).toBe(404);
      } finally {
        await p.close();
      }
    });
  });

  it('closes cleanly even with keep-alive sockets open', async () => {
    const p = await startStack();
    await getAccessToken(p); // leaves keep-alive connections in fetch's pool
    const started = Date.now();
    await p.close();
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(fetch(p.idp.tokenEndpoint, { method: 'POST' })).rejects.toThrow();
    const http = await startHttpServer((_req, res) => {
      res.end('ok');
    });
    await http.close();
    await http.close(); // idempotent
  });
});
