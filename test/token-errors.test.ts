/**
 * Token-endpoint and ID-token answers that are not what the protocol says (RFC 6749 §5, RFC 8693 §2.2,
 * ID-JAG draft §4.3, §4.4) become typed errors through the public API, against the real loopback
 * IdP, AS and MCP server.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CrossAppAccessError, OAuthResponseError, type IdTokenReason } from '../src/index.js';
import { DEFAULT_AS_CLIENT, type Stack } from './servers/stack.js';
import { expectCaaError, initializeRequest, jsonReply, onTokenPost } from './helpers/errors.js';
import { ACCESS_TOKEN_TYPE, expectInitializeOk, ID_JAG_TYPE, mintJag, useErrorStacks } from './helpers/error-stack.js';

/** The wrapper under test has a configured IdP token endpoint. */
const { setup, wrap, call } = useErrorStacks({ idp: 'tokenEndpoint' });

/** A JWE-shaped compact token: 5 base64url segments (MCP Enterprise-Managed Authorization §7.4.3). */
function jweShaped(): string {
  const header = Buffer.from(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', typ: 'oauth-id-jag+jwt', cty: 'JWT' })).toString('base64url');
  return [header, ...Array.from({ length: 4 }, () => randomBytes(24).toString('base64url'))].join('.');
}

/** No ID-JAG reached the AS token endpoint; no token reached the MCP server. */
function expectNothingRedeemed(stack: Stack): void {
  expect(stack.as.counters.grant).toBe(0);
  expect(stack.as.requests.filter((r) => r.method === 'POST')).toEqual([]);
  expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
}

describe('leg 1: token exchange at the IdP', () => {
  it('IdP answering an HTML error page with 500 → http_error, status 500, the HTML not quoted', async () => {
    const ctx = await setup();
    const html = '<html><head><title>Oops</title></head><body><h1>Internal Server Error</h1><pre>trace-7f3a9 at TokenController</pre></body></html>';
    ctx.stack.idp.override = onTokenPost(() => ({ status: 500, headers: { 'content-type': 'text/html' }, body: html }));
    const err = await expectCaaError(call(ctx), { code: 'http_error', stage: 'token_exchange', status: 500 }, ctx.recorder);
    expect(err.message).not.toContain('<');
    expect(err.message).not.toContain('Internal Server Error');
    expect(err.message).not.toContain('trace-7f3a9');
    expect(err.error).toBeUndefined();
    expectNothingRedeemed(ctx.stack);
  });

  it('RFC 6749 §5.2: IdP 400 {error: invalid_request, error_description} → OAuthResponseError oauth_error/token_exchange', async () => {
    const ctx = await setup();
    ctx.stack.idp.override = onTokenPost(() => jsonReply(400, { error: 'invalid_request', error_description: 'x' }));
    const err = await expectCaaError(
      call(ctx),
      { code: 'oauth_error', stage: 'token_exchange', status: 400, error: 'invalid_request', errorDescription: 'x' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    // An OAuth 4xx is never retried; the ID token was never offered to the AS.
    expect(ctx.stack.idp.counters.exchange).toBe(1);
    expectNothingRedeemed(ctx.stack);
  });

  it('RFC 6749 §5.2: IdP invalid_client 401 (wrong IdP secret, real rejection) → oauth_error with status 401', async () => {
    const ctx = await setup();
    const wrongSecret = 'wrong-idp-secret-91ZZ';
    ctx.recorder.add(wrongSecret);
    const err = await expectCaaError(
      call(ctx, { idp: { tokenEndpoint: ctx.stack.idp.tokenEndpoint, clientId: ctx.stack.idp.clientId, clientSecret: wrongSecret } }),
      { code: 'oauth_error', stage: 'token_exchange', status: 401, error: 'invalid_client', errorDescription: 'bad client secret' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    expectNothingRedeemed(ctx.stack);
  });

  it('IdP invalid_grant for a string idToken (real rejection: wrong aud) → login_required after one exchange', async () => {
    const ctx = await setup();
    const rejected = await ctx.stack.idp.mintIdToken({ aud: 'some-other-client' });
    ctx.recorder.add(rejected);
    const err = await expectCaaError(
      call(ctx, { idToken: rejected }),
      { code: 'login_required', stage: 'token_exchange', status: 400, error: 'invalid_grant', errorDescription: /subject_token rejected/ },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    expect(ctx.stack.idp.counters.exchange).toBe(1);
    expectNothingRedeemed(ctx.stack);
  });

  it("IdP invalid_grant, then a fresh ID token from the idToken function → succeeds; reasons ['initial', 'rejected']", async () => {
    const ctx = await setup();
    const rejected = await ctx.stack.idp.mintIdToken({ aud: 'some-other-client' });
    ctx.recorder.add(rejected);
    const reasons: IdTokenReason[] = [];
    const response = await call(ctx, {
      idToken: ({ reason }) => {
        reasons.push(reason);
        return reasons.length === 1 ? rejected : ctx.idToken;
      },
    });
    await expectInitializeOk(response);
    expect(reasons).toEqual(['initial', 'rejected']);
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expect(ctx.stack.idp.requests.map((r) => r.form.subject_token)).toEqual([rejected, ctx.idToken]);
    expect(ctx.stack.as.counters.grant).toBe(1);
  });

  it('an idToken function that keeps returning rejected tokens → login_required after exactly 2 exchanges', async () => {
    const ctx = await setup();
    const reasons: IdTokenReason[] = [];
    const err = await expectCaaError(
      call(ctx, {
        idToken: async ({ reason }) => {
          reasons.push(reason);
          const token = await ctx.stack.idp.mintIdToken({ aud: 'some-other-client' });
          ctx.recorder.add(token);
          return token;
        },
      }),
      { code: 'login_required', stage: 'token_exchange', status: 400, error: 'invalid_grant' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    expect(reasons).toEqual(['initial', 'rejected']);
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expectNothingRedeemed(ctx.stack);
  });

  it('IdP 200 with a non-JSON body → invalid_response/token_exchange, body not quoted', async () => {
    const ctx = await setup();
    const body = 'access_token=opaque-not-json-token-55&issued_token_type=id-jag';
    ctx.recorder.add('opaque-not-json-token-55');
    ctx.stack.idp.override = onTokenPost(() => ({ status: 200, headers: { 'content-type': 'text/plain' }, body }));
    const err = await expectCaaError(call(ctx), { code: 'invalid_response', stage: 'token_exchange', status: 200 }, ctx.recorder);
    expect(err.message).not.toContain('issued_token_type=');
    expectNothingRedeemed(ctx.stack);
  });

  it('RFC 8693 §2.2.1: IdP 200 {} (no access_token) → invalid_response/token_exchange', async () => {
    const ctx = await setup();
    ctx.stack.idp.override = onTokenPost(() => jsonReply(200, {}));
    await expectCaaError(call(ctx), { code: 'invalid_response', stage: 'token_exchange', status: 200 }, ctx.recorder);
    expectNothingRedeemed(ctx.stack);
  });

  it('RFC 8693 §2.2.1: IdP 200 with an empty access_token → invalid_response/token_exchange', async () => {
    const ctx = await setup();
    ctx.stack.idp.override = onTokenPost(() => jsonReply(200, { access_token: '', issued_token_type: ID_JAG_TYPE, token_type: 'N_A' }));
    await expectCaaError(call(ctx), { code: 'invalid_response', stage: 'token_exchange', status: 200 }, ctx.recorder);
    expectNothingRedeemed(ctx.stack);
  });

  it('ID-JAG draft §4.3.4: IdP issuing an access_token-typed token → invalid_token_type; the AS got nothing', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() =>
      jsonReply(200, { access_token: jag, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: 300 }),
    );
    const err = await expectCaaError(call(ctx), { code: 'invalid_token_type', stage: 'token_exchange' }, ctx.recorder);
    expect(err.message).toContain(ACCESS_TOKEN_TYPE);
    expect(ctx.stack.as.requests).toEqual([expect.objectContaining({ method: 'GET' })]);
    expectNothingRedeemed(ctx.stack);
  });

  it('ID-JAG draft §4.3.4: IdP 200 without issued_token_type → rejected (invalid_response), the AS got nothing', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() => jsonReply(200, { access_token: jag, token_type: 'N_A', expires_in: 300 }));
    await expectCaaError(call(ctx), { code: 'invalid_response', stage: 'token_exchange', status: 200 }, ctx.recorder);
    expectNothingRedeemed(ctx.stack);
  });

  it.each([
    ['missing', undefined],
    ['N_A', 'N_A'],
    ['n_a', 'n_a'],
  ])('RFC 8693 §2.2.1: token_type %s is accepted without a diagnostic', async (_label, tokenType) => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() =>
      jsonReply(200, { access_token: jag, issued_token_type: ID_JAG_TYPE, expires_in: 300, ...(tokenType ? { token_type: tokenType } : {}) }),
    );
    await expectInitializeOk(await call(ctx));
    expect(ctx.stack.as.requests.filter((r) => r.method === 'POST').map((r) => r.form.assertion)).toEqual([jag]);
    expect(ctx.recorder.diagnostics().filter((m) => m.includes('token_type'))).toEqual([]);
    await ctx.recorder.expectNoSecretIn(JSON.stringify(ctx.recorder.events), 'events');
  });

  it('RFC 8693 §2.2.1: any other token_type passes, with a diagnostic event', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() => jsonReply(200, { access_token: jag, issued_token_type: ID_JAG_TYPE, token_type: 'Bearer' }));
    await expectInitializeOk(await call(ctx));
    expect(ctx.recorder.diagnostics().some((m) => m.includes('token_type'))).toBe(true);
    await ctx.recorder.expectNoSecretIn(JSON.stringify(ctx.recorder.events), 'events');
  });

  it('IdP 200 carrying an error member → oauth_error (status 200), even with an access_token present', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() =>
      jsonReply(200, { error: 'access_denied', error_description: 'policy says no', access_token: jag, issued_token_type: ID_JAG_TYPE }),
    );
    const err = await expectCaaError(
      call(ctx),
      { code: 'oauth_error', stage: 'token_exchange', status: 200, error: 'access_denied', errorDescription: 'policy says no' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    expectNothingRedeemed(ctx.stack);
  });

  it('expires_in as a numeric string is accepted', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    ctx.recorder.add(jag);
    ctx.stack.idp.override = onTokenPost(() => jsonReply(200, { access_token: jag, issued_token_type: ID_JAG_TYPE, token_type: 'N_A', expires_in: '300' }));
    await expectInitializeOk(await call(ctx));
    expect(ctx.stack.as.counters.grant).toBe(1);
  });

  it('ID-JAG draft §4.3.4: a refresh_token in the exchange response is ignored and never sent on', async () => {
    const ctx = await setup();
    const jag = await mintJag(ctx.stack);
    const refresh = 'idp-refresh-token-should-be-ignored-1234';
    ctx.recorder.add(jag, refresh);
    ctx.stack.idp.override = onTokenPost(() =>
      jsonReply(200, { access_token: jag, issued_token_type: ID_JAG_TYPE, token_type: 'N_A', refresh_token: refresh }),
    );
    const authedFetch = wrap(ctx);
    await expectInitializeOk(await authedFetch(ctx.stack.mcp.url, initializeRequest()));
    const everything = JSON.stringify([ctx.stack.as.requests, ctx.stack.mcp.requests]);
    expect(everything).not.toContain(refresh);
  });
});

describe('leg 2: jwt-bearer at the AS', () => {
  it('RFC 6749 §5.2: AS invalid_client 401 (wrong client secret, real rejection) → oauth_error/jwt_bearer, status 401', async () => {
    const ctx = await setup();
    const wrongSecret = 'wrong-mcp-secret-77QQ';
    ctx.recorder.add(wrongSecret);
    const err = await expectCaaError(
      call(ctx, { client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: wrongSecret } }),
      { code: 'oauth_error', stage: 'jwt_bearer', status: 401, error: 'invalid_client', errorDescription: 'bad client secret' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    // The ID-JAG that was sent is among the secrets checked above.
    const sent = ctx.stack.as.requests.find((r) => r.method === 'POST');
    expect(sent?.form.assertion && ctx.recorder.secrets.has(sent.form.assertion)).toBe(true);
    expect(ctx.stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it("RFC 6749 §5.1: AS token_type 'mac' → invalid_token_type/jwt_bearer; the token is never used", async () => {
    const ctx = await setup();
    const macToken = 'mac-access-token-0123456789';
    ctx.recorder.add(macToken);
    ctx.stack.as.override = onTokenPost(() => jsonReply(200, { access_token: macToken, token_type: 'mac', expires_in: 3600 }));
    const err = await expectCaaError(call(ctx), { code: 'invalid_token_type', stage: 'jwt_bearer' }, ctx.recorder);
    expect(err.message).toContain('mac');
    expect(ctx.stack.as.counters.grant).toBe(1);
    expect(ctx.stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('RFC 6749 §5.1: AS 200 without access_token → invalid_response/jwt_bearer', async () => {
    const ctx = await setup();
    ctx.stack.as.override = onTokenPost(() => jsonReply(200, { token_type: 'Bearer', expires_in: 3600 }));
    await expectCaaError(call(ctx), { code: 'invalid_response', stage: 'jwt_bearer', status: 200 }, ctx.recorder);
    expect(ctx.stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('RFC 6749 §5.1: AS 200 without token_type → invalid_response/jwt_bearer; the token is never used', async () => {
    const ctx = await setup();
    const token = 'typeless-access-token-24680';
    ctx.recorder.add(token);
    ctx.stack.as.override = onTokenPost(() => jsonReply(200, { access_token: token, expires_in: 3600 }));
    await expectCaaError(call(ctx), { code: 'invalid_response', stage: 'jwt_bearer', status: 200 }, ctx.recorder);
    expect(ctx.stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('RFC 6749 §5.2: AS 400 invalid_grant (real rejection: the ID-JAG names another resource) → oauth_error/jwt_bearer with error and description', async () => {
    const ctx = await setup();
    ctx.stack.idp.transformIdJag = (draft) => {
      draft.claims.resource = 'https://elsewhere.example/mcp';
    };
    const err = await expectCaaError(
      call(ctx),
      { code: 'oauth_error', stage: 'jwt_bearer', status: 400, error: 'invalid_grant', errorDescription: /resource/ },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
  });
});

describe('optional ID-JAG checks (checkIdJag)', () => {
  it('ID-JAG draft §8.3: an ID-JAG for another audience → id_jag_mismatch; the AS token endpoint got 0 requests', async () => {
    const ctx = await setup();
    ctx.stack.idp.transformIdJag = (draft) => {
      draft.claims.aud = 'https://as.other.example';
    };
    await expectCaaError(call(ctx), { code: 'id_jag_mismatch', stage: 'token_exchange' }, ctx.recorder);
    // The refused ID-JAG was among the secrets checked (learned from the IdP's response).
    expect([...ctx.recorder.secrets].some((s) => s !== ctx.idToken && s.split('.').length === 3)).toBe(true);
    expect(ctx.stack.idp.counters.exchange).toBe(1);
    expectNothingRedeemed(ctx.stack);
  });

  it('an ID-JAG whose aud is a 2-element array → id_jag_mismatch; nothing redeemed', async () => {
    const ctx = await setup();
    ctx.stack.idp.transformIdJag = (draft) => {
      draft.claims.aud = [ctx.stack.as.issuer, 'https://as.other.example'];
    };
    await expectCaaError(call(ctx), { code: 'id_jag_mismatch', stage: 'token_exchange' }, ctx.recorder);
    expectNothingRedeemed(ctx.stack);
  });

  it('an ID-JAG for another client_id → id_jag_mismatch naming both client ids; nothing redeemed', async () => {
    const ctx = await setup();
    ctx.stack.idp.transformIdJag = (draft) => {
      draft.claims.client_id = 'somebody-elses-client';
    };
    const err = await expectCaaError(call(ctx), { code: 'id_jag_mismatch', stage: 'token_exchange' }, ctx.recorder);
    expect(err.message).toContain('somebody-elses-client');
    expect(err.message).toContain(DEFAULT_AS_CLIENT.clientId);
    expectNothingRedeemed(ctx.stack);
  });

  it('a JWE-shaped (5-segment) ID-JAG passes the client checks; after one more try with a new exchange the AS rejection surfaces from jwt_bearer', async () => {
    const ctx = await setup();
    const jwe = jweShaped();
    ctx.recorder.add(jwe);
    ctx.stack.idp.override = onTokenPost(() => jsonReply(200, { access_token: jwe, issued_token_type: ID_JAG_TYPE, token_type: 'N_A' }));
    const err = await expectCaaError(
      call(ctx),
      { code: 'oauth_error', stage: 'jwt_bearer', status: 400, error: 'invalid_grant' },
      ctx.recorder,
    );
    expect(err.code).not.toBe('id_jag_mismatch');
    // AS invalid_grant → both legs once more (one repeat with a new ID-JAG); this fake IdP hands out the same JWE twice.
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expect(ctx.stack.as.requests.filter((r) => r.method === 'POST').map((r) => r.form.assertion)).toEqual([jwe, jwe]);
  });

  it('§9: an AS invalid_grant once (e.g. a replayed or expired ID-JAG) → both legs once more with a new ID-JAG, then success', async () => {
    const ctx = await setup();
    let refused = 0;
    ctx.stack.as.override = onTokenPost(() => (refused++ === 0 ? jsonReply(400, { error: 'invalid_grant', error_description: 'jti already used' }) : undefined));
    await expectInitializeOk(await call(ctx));
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expect(ctx.stack.as.counters.grant).toBe(2);
    const assertions = ctx.stack.as.requests.filter((r) => r.method === 'POST').map((r) => r.form.assertion);
    expect(new Set(assertions).size).toBe(2);
  });

  it('checkIdJag: false disables the aud check; the AS rejects the ID-JAG twice (one repeat with a new one), surfaced from jwt_bearer', async () => {
    const ctx = await setup();
    ctx.stack.idp.transformIdJag = (draft) => {
      draft.claims.aud = 'https://as.other.example';
    };
    const err = await expectCaaError(
      call(ctx, { checkIdJag: false }),
      { code: 'oauth_error', stage: 'jwt_bearer', status: 400, error: 'invalid_grant' },
      ctx.recorder,
    );
    expect(err.code).not.toBe('id_jag_mismatch');
    expect(ctx.stack.as.counters.grant).toBe(2);
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    const assertions = ctx.stack.as.requests.filter((r) => r.method === 'POST').map((r) => r.form.assertion);
    expect(new Set(assertions).size).toBe(2); // a new ID-JAG for the repeat (MCP Enterprise-Managed Authorization §7.4.2)
  });
});

describe('the ID token source', () => {
  it('an expired ID token given as a string → login_required/id_token; the IdP got 0 exchanges', async () => {
    const ctx = await setup();
    const expired = await ctx.stack.idp.mintIdToken({ expiresInSeconds: -3600 });
    ctx.recorder.add(expired);
    await expectCaaError(call(ctx, { idToken: expired }), { code: 'login_required', stage: 'id_token' }, ctx.recorder);
    expect(ctx.stack.idp.counters.exchange).toBe(0);
    expect(ctx.stack.idp.requests).toEqual([]);
    expectNothingRedeemed(ctx.stack);
  });

  it("an idToken function that only has expired tokens is asked again ('rejected'), then login_required; 0 exchanges", async () => {
    const ctx = await setup();
    const reasons: IdTokenReason[] = [];
    await expectCaaError(
      call(ctx, {
        idToken: async ({ reason }) => {
          reasons.push(reason);
          const token = await ctx.stack.idp.mintIdToken({ expiresInSeconds: -3600 });
          ctx.recorder.add(token);
          return token;
        },
      }),
      { code: 'login_required', stage: 'id_token' },
      ctx.recorder,
    );
    expect(reasons).toEqual(['initial', 'rejected']);
    expect(ctx.stack.idp.counters.exchange).toBe(0);
    expectNothingRedeemed(ctx.stack);
  });

  it('an idToken function that throws → id_token_unavailable; its message (with a secret) is not copied', async () => {
    const ctx = await setup();
    const fakeSecret = 'rt-FAKE-REFRESH-SECRET-998877';
    ctx.recorder.add(fakeSecret);
    const thrown = new Error(`SSO refresh failed for refresh_token=${fakeSecret}`);
    const err = await expectCaaError(
      call(ctx, { idToken: () => { throw thrown; } }),
      { code: 'id_token_unavailable', stage: 'id_token' },
      ctx.recorder,
    );
    expect(err.cause).toBe(thrown);
    expect(String(err)).not.toContain(fakeSecret);
    expect(ctx.stack.idp.requests).toEqual([]);
    expectNothingRedeemed(ctx.stack);
  });

  it('an idToken function that rejects → id_token_unavailable', async () => {
    const ctx = await setup();
    const fakeSecret = 'session-cookie-FAKE-4433221100';
    ctx.recorder.add(fakeSecret);
    await expectCaaError(
      call(ctx, { idToken: () => Promise.reject(new Error(`no session ${fakeSecret}`)) }),
      { code: 'id_token_unavailable', stage: 'id_token' },
      ctx.recorder,
    );
    expect(ctx.stack.idp.requests).toEqual([]);
  });

  it.each([
    ['an empty string', ''],
    ['a blank string', '   '],
    ['a number', 42],
    ['undefined', undefined],
    ['an object', { id_token: 'eyJ.not.this' }],
  ])('an idToken function returning %s → id_token_unavailable', async (_label, value) => {
    const ctx = await setup();
    await expectCaaError(
      call(ctx, { idToken: () => value as unknown as string }),
      { code: 'id_token_unavailable', stage: 'id_token' },
      ctx.recorder,
    );
    expect(ctx.stack.idp.requests).toEqual([]);
    expectNothingRedeemed(ctx.stack);
  });

  it('an idToken function that never resolves, with timeout: 200 → timeout/id_token', async () => {
    const ctx = await setup();
    let seenSignal: AbortSignal | undefined;
    const err = await expectCaaError(
      call(ctx, {
        timeout: 200,
        idToken: ({ signal }) => {
          seenSignal = signal;
          return new Promise<string>(() => undefined);
        },
      }),
      { code: 'timeout', stage: 'id_token' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(CrossAppAccessError);
    expect(seenSignal).toBeInstanceOf(AbortSignal);
    expect(ctx.stack.idp.requests).toEqual([]);
    expectNothingRedeemed(ctx.stack);
  });
});
