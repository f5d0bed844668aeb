/**
 * Discovery answers that are not what the protocol says (RFC 9728, RFC 8414) become typed errors
 * through the public API, against the real loopback IdP, AS and MCP SDK server.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_AS_CLIENT, type Stack } from './servers/stack.js';
import { expectCaaError, initializeRequest, jsonReply } from './helpers/errors.js';
import { AS_SECRET, expectInitializeOk, ID_JAG_PROFILE, useErrorStacks } from './helpers/error-stack.js';

/** IdP discovered from its issuer. */
const { setup, wrap, call, counting, expectDiscoveryFailure } = useErrorStacks({ idp: 'issuer' });

/** Neither the ID token nor an ID-JAG left: no token request reached the IdP or the AS. */
/**
 * The IdP saw nothing but its public metadata (discovered early, alongside the MCP server's and the
 * authorization server's): no token request, so the ID token never left.
 */
function expectOnlyIdpMetadata(stack: Stack): void {
  expect(stack.idp.requests.filter((r) => r.method !== 'GET' || !r.path.includes('/.well-known/'))).toEqual([]);
}

function expectNoTokenRequests(stack: Stack): void {
  expect(stack.idp.counters.exchange).toBe(0);
  expect(stack.as.counters.grant).toBe(0);
  expect(stack.idp.requests.filter((r) => r.method === 'POST')).toEqual([]);
  expect(stack.as.requests.filter((r) => r.method === 'POST')).toEqual([]);
  expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
}

describe('protected-resource metadata (RFC 9728)', () => {
  it.each([
    ['missing authorization_servers', { authorization_servers: undefined }],
    ['an empty authorization_servers array', { authorization_servers: [] }],
    ['a non-array authorization_servers', { authorization_servers: 'http://127.0.0.1:1' }],
    ['authorization_servers holding a non-string', { authorization_servers: [42] }],
  ])('MCP authorization spec, "Authorization Server Location": PRM with %s → invalid_metadata/discovery', async (_label, prmOverrides) => {
    const ctx = await setup({ mcp: { prmOverrides } });
    const err = await expectDiscoveryFailure(ctx, { code: 'invalid_metadata', stage: 'discovery' });
    expect(err.message).toContain('authorization_servers');
    expect(ctx.stack.as.requests).toEqual([]);
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 9728 §3.3: PRM without resource → invalid_metadata/discovery', async () => {
    const ctx = await setup({ mcp: { prmOverrides: { resource: undefined } } });
    const err = await expectDiscoveryFailure(ctx, { code: 'invalid_metadata', stage: 'discovery' });
    expect(err.message).toContain('resource');
    expect(ctx.stack.as.requests).toEqual([]);
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 9728 §3.3: PRM naming a resource on another origin → resource_mismatch, nothing sent anywhere', async () => {
    const ctx = await setup({ mcp: { resourceOverride: 'https://mcp.other.example/mcp' } });
    await expectDiscoveryFailure(ctx, { code: 'resource_mismatch', stage: 'discovery' });
    expect(ctx.stack.as.requests).toEqual([]);
    expectOnlyIdpMetadata(ctx.stack);
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 9728 §3.3: PRM naming a same-origin resource that does not cover the request path → resource_mismatch', async () => {
    const prmOverrides: Record<string, unknown> = {};
    const ctx = await setup({ mcp: { prmOverrides } });
    prmOverrides.resource = `${ctx.stack.mcp.origin}/mcp2`;
    await expectDiscoveryFailure(ctx, { code: 'resource_mismatch', stage: 'discovery' });
    expect(ctx.stack.as.requests).toEqual([]);
    expectNoTokenRequests(ctx.stack);
  });

  it.each([
    ['the PRM adds a trailing slash', (r: string) => ({ prm: `${r}/`, configured: r })],
    ['the configured resource has a trailing slash', (r: string) => ({ prm: r, configured: `${r}/` })],
  ])('RFC 9728 §3.3: configured resource vs PRM resource differing by a trailing slash (%s) → resource_mismatch', async (_label, pick) => {
    const prmOverrides: Record<string, unknown> = {};
    const ctx = await setup({ mcp: { prmOverrides, prm: 'root' } });
    const { prm, configured } = pick(ctx.stack.mcp.resource);
    prmOverrides.resource = prm;
    await expectCaaError(call(ctx, { resource: configured }), { code: 'resource_mismatch', stage: 'discovery' }, ctx.recorder);
    expect(ctx.stack.mcp.counters.prm).toBeGreaterThanOrEqual(1);
    expect(ctx.stack.as.requests).toEqual([]);
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 9728 §5.1: PRM reachable only through the challenge resource_metadata (prm: header-only) works', async () => {
    const ctx = await setup({ mcp: { prm: 'header-only' } });
    const response = await call(ctx);
    await expectInitializeOk(response);
    const paths = ctx.stack.mcp.requests.map((r) => r.path);
    expect(paths).toEqual(['/mcp', '/meta/prm', '/mcp']);
    expect(ctx.stack.mcp.counters.prm).toBe(1);
    expect(ctx.stack.mcp.counters.authorized).toBe(1);
    expect(ctx.stack.idp.counters.exchange).toBe(1);
    expect(ctx.stack.as.counters.grant).toBe(1);
  });

  it('RFC 9728 §3.1: PRM only at the root well-known URL, no resource_metadata in the challenge (prm: root) works', async () => {
    const ctx = await setup({ mcp: { prm: 'root', challengeResourceMetadata: false } });
    const response = await call(ctx);
    await expectInitializeOk(response);
    const paths = ctx.stack.mcp.requests.map((r) => r.path);
    expect(paths).toEqual([
      '/mcp',
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
      '/mcp',
    ]);
    expect(ctx.stack.mcp.counters.authorized).toBe(1);
  });

  it('a 401 from a server with no PRM anywhere and no resource option is returned untouched', async () => {
    const ctx = await setup();
    const legacy = await counting((req, res) => {
      if ((req.url ?? '').startsWith('/.well-known/')) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="legacy", error="invalid_token"', 'content-type': 'text/plain', 'x-legacy': 'yes' });
      res.end('legacy says no');
    });
    const response = await wrap(ctx)(`${legacy.url}/api/mcp`, initializeRequest());
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="legacy", error="invalid_token"');
    expect(response.headers.get('x-legacy')).toBe('yes');
    expect(await response.text()).toBe('legacy says no');
    // One request to the resource (no retry), then the two PRM probes (path-aware, then root: RFC 9728 §3.1).
    expect(legacy.hits.map((h) => `${h.method} ${h.path}`)).toEqual([
      'POST /api/mcp',
      'GET /.well-known/oauth-protected-resource/api/mcp',
      'GET /.well-known/oauth-protected-resource',
    ]);
    expect(legacy.hits.some((h) => h.headers.authorization !== undefined)).toBe(false);
    expectOnlyIdpMetadata(ctx.stack);
    expect(ctx.stack.as.requests).toEqual([]);
  });
});

describe('authorization-server metadata (RFC 8414)', () => {
  it('RFC 8414 §3.3: AS metadata issuer differing by a trailing slash → issuer_mismatch; no ID token or ID-JAG sent', async () => {
    const metadataOverrides: Record<string, unknown> = {};
    const ctx = await setup({ as: { metadataOverrides } });
    metadataOverrides.issuer = `${ctx.stack.as.issuer}/`;
    let asked = 0;
    const err = await expectDiscoveryFailure(ctx, { code: 'issuer_mismatch', stage: 'discovery' }, { idToken: () => { asked++; return ctx.idToken; } });
    expect(err.message).toContain(ctx.stack.as.issuer);
    expect(asked).toBe(0);
    expect(ctx.stack.as.counters.metadata).toBe(2); // once per wrapper
    expectOnlyIdpMetadata(ctx.stack);
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 8414 §3.3: AS metadata naming a different issuer altogether → issuer_mismatch', async () => {
    const ctx = await setup({ as: { metadataOverrides: { issuer: 'https://as.evil.example' } } });
    await expectDiscoveryFailure(ctx, { code: 'issuer_mismatch', stage: 'discovery' });
    expectNoTokenRequests(ctx.stack);
  });

  it('AS metadata without token_endpoint → invalid_metadata/discovery', async () => {
    const ctx = await setup({ as: { metadataOverrides: { token_endpoint: undefined } } });
    const err = await expectDiscoveryFailure(ctx, { code: 'invalid_metadata', stage: 'discovery' });
    expect(err.message).toContain('token_endpoint');
    expectNoTokenRequests(ctx.stack);
  });

  it('AS metadata with a non-string token_endpoint → invalid_metadata/discovery', async () => {
    const ctx = await setup({ as: { metadataOverrides: { token_endpoint: ['https://as.example.com/token'] } } });
    await expectDiscoveryFailure(ctx, { code: 'invalid_metadata', stage: 'discovery' });
    expectNoTokenRequests(ctx.stack);
  });

  it('AS metadata with an http:// non-loopback token_endpoint → insecure_url; nothing sent', async () => {
    const ctx = await setup({ as: { metadataOverrides: { token_endpoint: 'http://as.example.com/token' } } });
    await expectDiscoveryFailure(ctx, { code: 'insecure_url', stage: 'discovery' });
    expectOnlyIdpMetadata(ctx.stack);
    expectNoTokenRequests(ctx.stack);
  });

  it('ID-JAG draft §7.2: authorization_grant_profiles_supported without the id-jag profile → unsupported_profile', async () => {
    const ctx = await setup({
      as: { metadataOverrides: { authorization_grant_profiles_supported: ['urn:example:grant-profile:other'] } },
    });
    const err = await expectDiscoveryFailure(ctx, { code: 'unsupported_profile', stage: 'discovery' });
    expect(err.message).toContain('authorization_grant_profiles_supported');
    expectOnlyIdpMetadata(ctx.stack);
    expectNoTokenRequests(ctx.stack);
  });

  it('ID-JAG draft §7.2: no profile list and grant_types_supported without jwt-bearer → unsupported_profile', async () => {
    const ctx = await setup({
      as: {
        metadataOverrides: {
          authorization_grant_profiles_supported: undefined,
          grant_types_supported: ['authorization_code', 'refresh_token'],
        },
      },
    });
    await expectDiscoveryFailure(ctx, { code: 'unsupported_profile', stage: 'discovery' });
    expectNoTokenRequests(ctx.stack);
  });

  it('ID-JAG draft §7.2: a profile list naming id-jag wins over a grant list lacking jwt-bearer (works)', async () => {
    const ctx = await setup({
      as: { metadataOverrides: { authorization_grant_profiles_supported: [ID_JAG_PROFILE], grant_types_supported: ['authorization_code'] } },
    });
    await expectInitializeOk(await call(ctx));
  });

  it('RFC 8414 §3.1: AS metadata 404 at every well-known URL → metadata_not_found, after trying exactly the RFC 8414 / OIDC URLs', async () => {
    const ctx = await setup({ as: { metadataPaths: [] } });
    const err = await expectDiscoveryFailure(ctx, { code: 'metadata_not_found', stage: 'discovery' });
    // Tried by each of the two wrappers, exactly these URLs in this order.
    const tried = ['GET /.well-known/oauth-authorization-server', 'GET /.well-known/openid-configuration'];
    expect(ctx.stack.as.requests.map((r) => `${r.method} ${r.path}`)).toEqual([...tried, ...tried]);
    expect(err.message).toContain('/.well-known/oauth-authorization-server');
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 8414 §3.1: AS metadata answered by an HTML page with 200 → metadata_not_found (non-JSON means "not here")', async () => {
    const ctx = await setup();
    const html = '<!doctype html><html><body><h1>Welcome to the SSO portal</h1></body></html>';
    ctx.stack.as.override = (req) =>
      req.method === 'GET' && req.path.startsWith('/.well-known/')
        ? { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html }
        : undefined;
    const err = await expectDiscoveryFailure(ctx, { code: 'metadata_not_found', stage: 'discovery' });
    expect(err.message).not.toContain('<html');
    expect(err.message).not.toContain('Welcome');
    const tried = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
    expect(ctx.stack.as.requests.map((r) => r.path)).toEqual([...tried, ...tried]);
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 8414 §3.1: AS metadata answered by a JSON array with 200 → metadata_not_found', async () => {
    const ctx = await setup();
    ctx.stack.as.override = (req) => (req.path.startsWith('/.well-known/') ? jsonReply(200, [{ issuer: ctx.stack.as.issuer }]) : undefined);
    await expectDiscoveryFailure(ctx, { code: 'metadata_not_found', stage: 'discovery' });
    expectNoTokenRequests(ctx.stack);
  });

  it('RFC 8414 §2: AS metadata not listing the configured client.authMethod → unsupported_auth_method; nothing sent', async () => {
    const ctx = await setup();
    const err = await expectDiscoveryFailure(ctx, { code: 'unsupported_auth_method', stage: 'discovery' }, {
        client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: AS_SECRET, authMethod: 'client_secret_post' },
      });
    expect(err.message).toContain('client_secret_post');
    expectOnlyIdpMetadata(ctx.stack);
    expectNoTokenRequests(ctx.stack);
  });

  it('MCP authorization spec, "Authorization Server Binding": client.issuer pinned to another AS → issuer_not_allowed; neither the AS nor the IdP got any request', async () => {
    const ctx = await setup();
    let asked = 0;
    // Without resource, a server guarded by another AS is not ours: its 401 comes back, with a diagnostic.
    const response = await call(ctx, {
      idToken: () => { asked++; return ctx.idToken; },
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: AS_SECRET, issuer: 'https://as.pinned.example' },
    });
    expect(response.status).toBe(401);
    const diagnostic = ctx.recorder.diagnostics().find((m) => m.includes('(issuer_not_allowed:'));
    expect(diagnostic).toContain('https://as.pinned.example');
    expect(asked).toBe(0);
    expect(ctx.stack.as.requests).toEqual([]);
    expectOnlyIdpMetadata(ctx.stack);
    expectNoTokenRequests(ctx.stack);
  });

  it('metadata is cached: a second acquisition after revocation fetches no metadata again', async () => {
    const ctx = await setup();
    const authedFetch = wrap(ctx);
    await expectInitializeOk(await authedFetch(ctx.stack.mcp.url, initializeRequest()));
    expect(ctx.stack.idp.counters.exchange).toBe(1);

    ctx.stack.as.revokeAll(); // the cached access token now gets a 401: re-acquire
    await expectInitializeOk(await authedFetch(ctx.stack.mcp.url, initializeRequest()));

    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expect(ctx.stack.as.counters.grant).toBe(2);
    expect(ctx.stack.mcp.counters.prm).toBe(1);
    expect(ctx.stack.as.counters.metadata).toBe(1);
    expect(ctx.stack.idp.counters.metadata).toBe(1);
    expect(ctx.stack.as.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    // The root IdP serves only openid-configuration, which an IdP's discovery tries first: one
    // request, once for both acquisitions.
    expect(ctx.stack.idp.requests.filter((r) => r.method === 'GET').map((r) => r.path)).toEqual(['/.well-known/openid-configuration']);
  });
});

describe('IdP metadata (OIDC Discovery / RFC 8414)', () => {
  it('OpenID Connect Discovery §4.3: IdP metadata issuer differing by a trailing slash → issuer_mismatch; the ID token never left', async () => {
    const metadataOverrides: Record<string, unknown> = {};
    const ctx = await setup({ idp: { metadataOverrides } });
    metadataOverrides.issuer = `${ctx.stack.idp.issuer}/`;
    await expectCaaError(call(ctx), { code: 'issuer_mismatch', stage: 'discovery' }, ctx.recorder);
    expect(ctx.stack.idp.counters.metadata).toBe(1);
    expectNoTokenRequests(ctx.stack);
  });

  it('IdP metadata with an http:// non-loopback token_endpoint → insecure_url; the ID token never left', async () => {
    const ctx = await setup({ idp: { metadataOverrides: { token_endpoint: 'http://idp.example.com/token' } } });
    await expectCaaError(call(ctx), { code: 'insecure_url', stage: 'discovery' }, ctx.recorder);
    expectNoTokenRequests(ctx.stack);
  });

  it('IdP metadata 404 everywhere → metadata_not_found', async () => {
    const ctx = await setup({ idp: { metadataPaths: [] } });
    await expectCaaError(call(ctx), { code: 'metadata_not_found', stage: 'discovery' }, ctx.recorder);
    expect(ctx.stack.idp.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      // OpenID Discovery first for an IdP (it issued an ID token: an OpenID Provider), then RFC 8414.
      'GET /.well-known/openid-configuration',
      'GET /.well-known/oauth-authorization-server',
    ]);
    expectNoTokenRequests(ctx.stack);
  });

  it('OpenID Connect Discovery §4, RFC 8414 §3.1: an IdP with a path issuer (/tenant-1) is discovered at its own URLs, OpenID first, never the root, and works', async () => {
    const ctx = await setup({ idp: { issuerPath: '/tenant-1' } });
    expect(ctx.stack.idp.issuer).toMatch(/\/tenant-1$/);
    await expectInitializeOk(await call(ctx));
    expect(ctx.stack.idp.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /tenant-1/.well-known/openid-configuration',
      'POST /tenant-1/token',
    ]);
    expect(ctx.stack.as.counters.grant).toBe(1);
  });
});
