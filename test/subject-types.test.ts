/**
 * Subject token types other than the ID token (ID-JAG draft §4.3, §4.5), through the public
 * API against the loopback stack: an IdP refresh token as the subject, and a (stand-in, unsigned) SAML
 * 2 assertion exchanged for an IdP refresh token first. The refresh token must never be cached, never
 * leave the IdP, and never appear in an event or an error.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  crossAppAccess,
  withCrossAppAccess,
  type CrossAppAccessOptions,
  type FetchLike,
  type IdTokenReason,
} from '../src/index.js';
import { expectCaaError, Recorder } from './helpers/errors.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import {
  GRANT_TOKEN_EXCHANGE,
  TOKEN_TYPE_ID_JAG,
  TOKEN_TYPE_REFRESH_TOKEN,
  TOKEN_TYPE_SAML2,
} from './servers/idp.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
let recorder: Recorder;
beforeEach(async () => {
  stack = await startStack();
  recorder = new Recorder();
});
afterEach(async () => {
  await stack.close();
});

/** Wrapper options for the stack, with the recorder's events. */
const options = (overrides: Partial<CrossAppAccessOptions> = {}) =>
  stackOptions(stack, { resource: stack.mcp.resource, onEvent: recorder.onEvent, ...overrides });

/** The IdP token-endpoint POSTs, in order. */
const idpTokenPosts = () => stack.idp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token'));

/** Every IdP refresh token issued so far (the fixture keeps them until revoked). */
const issuedRefreshTokens = () => [...stack.idp.refreshTokens.keys()];

async function whoami(fetchFn: FetchLike): Promise<string> {
  const client = new Client({ name: 'subject-types-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url), { fetch: fetchFn }));
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return (result as { content: Array<{ text: string }> }).content.map((c) => c.text).join('');
  } finally {
    await client.close();
  }
}

/** Asserts `secret` reached neither the AS nor the MCP server, nor any event. */
function expectConfinedToIdp(secret: string): void {
  expect(JSON.stringify(stack.as.requests)).not.toContain(secret);
  expect(JSON.stringify(stack.mcp.requests)).not.toContain(secret);
  expect(JSON.stringify(recorder.events)).not.toContain(secret);
}

describe("subjectTokenType: 'refresh_token' (ID-JAG draft §4.3)", () => {
  it('sends the IdP refresh token as the subject of the ID-JAG exchange; the ID-JAG names its user', async () => {
    const rt = stack.idp.issueRefreshToken('rita');
    const authedFetch = withCrossAppAccess(recorder.fetch, options({ subjectTokenType: 'refresh_token', idToken: rt }));
    expect(await whoami(authedFetch)).toMatch(/^sub=rita /);

    const posts = idpTokenPosts();
    expect(posts).toHaveLength(1);
    expect(posts[0]!.form).toMatchObject({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: rt,
      subject_token_type: TOKEN_TYPE_REFRESH_TOKEN,
      requested_token_type: TOKEN_TYPE_ID_JAG,
      audience: stack.as.issuer,
      resource: stack.mcp.resource,
    });
    expect(stack.as.counters.grant).toBe(1);
    expectConfinedToIdp(rt);
  });

  it('is not checked for expiry (the expiry check is for ID tokens only): a refresh token that looks like an expired JWT is sent as is', async () => {
    const jwtLooking = await stack.idp.mintIdToken({ sub: 'dave', expiresInSeconds: -3600 });
    stack.idp.issueRefreshToken('dave', jwtLooking);
    const reasons: IdTokenReason[] = [];
    const authedFetch = withCrossAppAccess(
      recorder.fetch,
      options({ subjectTokenType: 'refresh_token', idToken: ({ reason }) => (reasons.push(reason), jwtLooking) }),
    );
    expect((await authedFetch(stack.mcp.url, listToolsInit(1))).status).toBe(200);
    expect(reasons).toEqual(['initial']); // not asked again for a "fresher" one
    expect(idpTokenPosts().map((r) => r.form.subject_token)).toEqual([jwtLooking]);

    // A static string source too: no login_required from a decoded exp.
    const staticFetch = withCrossAppAccess(recorder.fetch, options({ subjectTokenType: 'refresh_token', idToken: jwtLooking }));
    expect((await staticFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200);
  });

  it('an unknown (revoked) refresh token → IdP invalid_grant → login_required; the token is in no error or event', async () => {
    const rt = stack.idp.issueRefreshToken('rita');
    stack.idp.revokeRefreshTokens();
    recorder.add(rt);
    const authedFetch = withCrossAppAccess(recorder.fetch, options({ subjectTokenType: 'refresh_token', idToken: rt }));
    await expectCaaError(
      authedFetch(stack.mcp.url, listToolsInit(1)),
      { code: 'login_required', stage: 'token_exchange', status: 400, error: 'invalid_grant' },
      recorder,
    );
    expect(idpTokenPosts()).toHaveLength(1);
    expect(stack.as.counters.grant).toBe(0);
  });
});

describe("subjectTokenType: 'saml2' (ID-JAG draft §4.5)", () => {
  it('exchanges the assertion for an IdP refresh token, then that for an ID-JAG; the refresh token stays at the IdP', async () => {
    const assertion = stack.idp.mintSamlAssertion({ nameId: 'carol' });
    const authedFetch = withCrossAppAccess(recorder.fetch, options({ subjectTokenType: 'saml2', idToken: () => assertion }));
    expect(await whoami(authedFetch)).toMatch(/^sub=carol /);

    const [rt, ...more] = issuedRefreshTokens();
    expect(rt).toBeDefined();
    expect(more).toEqual([]);
    const posts = idpTokenPosts();
    expect(posts).toHaveLength(2);
    expect(posts[0]!.form).toMatchObject({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: assertion,
      subject_token_type: TOKEN_TYPE_SAML2,
      requested_token_type: TOKEN_TYPE_REFRESH_TOKEN,
      scope: 'openid offline_access',
    });
    expect(posts[1]!.form).toMatchObject({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: rt,
      subject_token_type: TOKEN_TYPE_REFRESH_TOKEN,
      requested_token_type: TOKEN_TYPE_ID_JAG,
      audience: stack.as.issuer,
      resource: stack.mcp.resource,
    });
    // Both exchanges authenticate as the IdP client (here `none`: the client_id, if sent, is the IdP one).
    for (const p of posts) if (p.form.client_id !== undefined) expect(p.form.client_id).toBe(stack.idp.clientId);
    expect(stack.as.counters.grant).toBe(1);
    expectConfinedToIdp(rt!);
    expectConfinedToIdp(assertion);
  });

  it('the refresh token is not cached: after as.revokeAll() the assertion is asked for again (renewal) and both exchanges run again', async () => {
    const reasons: IdTokenReason[] = [];
    const authedFetch = withCrossAppAccess(
      recorder.fetch,
      options({
        subjectTokenType: 'saml2',
        idToken: ({ reason }) => {
          reasons.push(reason);
          return stack.idp.mintSamlAssertion({ nameId: 'carol' });
        },
      }),
    );
    expect((await authedFetch(stack.mcp.url, listToolsInit(1))).status).toBe(200);
    expect((await authedFetch(stack.mcp.url, listToolsInit(2))).status).toBe(200); // cached access token
    expect(idpTokenPosts()).toHaveLength(2);
    stack.as.revokeAll();
    expect((await authedFetch(stack.mcp.url, listToolsInit(3))).status).toBe(200);

    expect(reasons).toEqual(['initial', 'renewal']);
    const posts = idpTokenPosts();
    expect(posts.map((p) => p.form.subject_token_type)).toEqual([
      TOKEN_TYPE_SAML2,
      TOKEN_TYPE_REFRESH_TOKEN,
      TOKEN_TYPE_SAML2,
      TOKEN_TYPE_REFRESH_TOKEN,
    ]);
    const rts = issuedRefreshTokens();
    expect(rts).toHaveLength(2);
    expect([posts[1]!.form.subject_token, posts[3]!.form.subject_token]).toEqual(rts);
    for (const rt of rts) expectConfinedToIdp(rt);
  });

  it("an expired assertion (IdP invalid_grant), then a valid one from the function → succeeds; reasons ['initial', 'rejected']", async () => {
    const reasons: IdTokenReason[] = [];
    const expired = stack.idp.mintSamlAssertion({ nameId: 'carol', notOnOrAfter: new Date(Date.now() - 60_000) });
    const authedFetch = withCrossAppAccess(
      recorder.fetch,
      options({
        subjectTokenType: 'saml2',
        idToken: ({ reason }) => {
          reasons.push(reason);
          return reasons.length === 1 ? expired : stack.idp.mintSamlAssertion({ nameId: 'carol' });
        },
      }),
    );
    expect(await whoami(authedFetch)).toMatch(/^sub=carol /);
    expect(reasons).toEqual(['initial', 'rejected']);
    expect(idpTokenPosts().map((p) => p.form.subject_token_type)).toEqual([TOKEN_TYPE_SAML2, TOKEN_TYPE_SAML2, TOKEN_TYPE_REFRESH_TOKEN]);
    expect(stack.as.counters.grant).toBe(1);
  });

  it('an expired assertion from a string source → login_required after one exchange; nothing reaches the AS', async () => {
    const expired = stack.idp.mintSamlAssertion({ notOnOrAfter: new Date(Date.now() - 60_000) });
    const authedFetch = withCrossAppAccess(recorder.fetch, options({ subjectTokenType: 'saml2', idToken: expired }));
    await expectCaaError(
      authedFetch(stack.mcp.url, listToolsInit(1)),
      { code: 'login_required', stage: 'token_exchange', status: 400, error: 'invalid_grant', errorDescription: /NotOnOrAfter/ },
      recorder,
    );
    expect(idpTokenPosts()).toHaveLength(1);
    expect(issuedRefreshTokens()).toEqual([]);
    expect(stack.as.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });

  it('a string assertion is single use: renewal replays it → IdP invalid_grant → login_required (no cached refresh token to fall back on)', async () => {
    const assertion = stack.idp.mintSamlAssertion();
    const authedFetch = withCrossAppAccess(recorder.fetch, options({ subjectTokenType: 'saml2', idToken: assertion }));
    expect((await authedFetch(stack.mcp.url, listToolsInit(1))).status).toBe(200);
    stack.as.revokeAll();
    await expectCaaError(
      authedFetch(stack.mcp.url, listToolsInit(2)),
      { code: 'login_required', stage: 'token_exchange', status: 400, error: 'invalid_grant', errorDescription: /replay/ },
      recorder,
    );
    expect(idpTokenPosts().map((p) => p.form.subject_token_type)).toEqual([TOKEN_TYPE_SAML2, TOKEN_TYPE_REFRESH_TOKEN, TOKEN_TYPE_SAML2]);
  });

  describe('the refresh token rejected on the second exchange (revoked in between)', () => {
    /** Forwards to the recorder, revoking every IdP refresh token right after the first SAML exchange answers. */
    function revokingAfterFirstSaml(): FetchLike {
      let done = false;
      return async (url, init) => {
        const response = await recorder.fetch(url, init);
        const body = typeof init?.body === 'string' ? init.body : '';
        if (!done && body.includes(encodeURIComponent(TOKEN_TYPE_SAML2))) {
          done = true;
          await recorder.settled(); // the recorder has read the refresh token from the reply
          stack.idp.revokeRefreshTokens();
        }
        return response;
      };
    }

    it("function source: asked again with 'rejected', both exchanges rerun → succeeds", async () => {
      const reasons: IdTokenReason[] = [];
      const authedFetch = withCrossAppAccess(
        revokingAfterFirstSaml(),
        options({
          subjectTokenType: 'saml2',
          idToken: ({ reason }) => {
            reasons.push(reason);
            return stack.idp.mintSamlAssertion({ nameId: 'carol' });
          },
        }),
      );
      expect(await whoami(authedFetch)).toMatch(/^sub=carol /);
      expect(reasons).toEqual(['initial', 'rejected']);
      expect(idpTokenPosts()).toHaveLength(4);
    });

    it('string source: login_required, and the refresh token is in neither the error nor any event', async () => {
      const authedFetch = withCrossAppAccess(
        revokingAfterFirstSaml(),
        options({ subjectTokenType: 'saml2', idToken: stack.idp.mintSamlAssertion() }),
      );
      // expectCaaError checks the error message, its JSON and every event against every collected
      // secret, which includes the refresh token (the `access_token` of the SAML exchange's reply).
      await expectCaaError(
        authedFetch(stack.mcp.url, listToolsInit(1)),
        { code: 'login_required', stage: 'token_exchange', status: 400, error: 'invalid_grant' },
        recorder,
      );
      const posts = idpTokenPosts();
      expect(posts.map((p) => p.form.subject_token_type)).toEqual([TOKEN_TYPE_SAML2, TOKEN_TYPE_REFRESH_TOKEN]);
      expect(recorder.secrets.has(posts[1]!.form.subject_token!)).toBe(true);
      expect(stack.as.requests.filter((r) => r.method === 'POST')).toEqual([]);
    });
  });
});

describe('subjectTokenType configuration', () => {
  it("rejects an unknown subjectTokenType ('jwt') with a ConfigurationError naming the option", () => {
    const bad = { ...options(), subjectTokenType: 'jwt' } as unknown as CrossAppAccessOptions;
    for (const make of [() => withCrossAppAccess(fetch, bad), () => crossAppAccess(bad)]) {
      let thrown: unknown;
      try {
        make();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigurationError);
      const e = thrown as ConfigurationError;
      expect(e.code).toBe('invalid_option');
      expect(e.option).toContain('subjectTokenType');
      expect(e.message).toContain('subjectTokenType');
    }
  });

  it.each(['id_token', 'saml2', 'refresh_token'] as const)('accepts %s', (subjectTokenType) => {
    expect(() => withCrossAppAccess(fetch, options({ subjectTokenType }))).not.toThrow();
  });
});
