/**
 * ID-JAG draft -04 §4.3: an IdP may refuse the exchange with `insufficient_user_authentication` (and
 * `max_age`) when the user's sign-in is too old. The application's `idToken` is asked once, with
 * reason `'reauthenticate'` and `maxAge`; a fresh sign-in goes on, a second refusal (or a string
 * idToken, which cannot sign in again) is the typed error `insufficient_user_authentication` carrying
 * `maxAge`. The real loopback IdP demands `auth_time` within its `maxAge`.
 */
import { describe, expect, it } from 'vitest';
import { OAuthResponseError, type IdTokenReason } from '../src/index.js';
import { expectCaaError, jsonReply, onTokenPost } from './helpers/errors.js';
import { expectInitializeOk, useErrorStacks } from './helpers/error-stack.js';

const { setup, call } = useErrorStacks({ idp: 'tokenEndpoint' });

const MAX_AGE = 300;
type Asked = { reason: IdTokenReason; maxAge?: number; hasMaxAge: boolean };

/** ID tokens whose sign-in was an hour ago, except for the reasons in `freshFor`. */
function idTokens(ctx: Awaited<ReturnType<typeof setup>>, freshFor: IdTokenReason[]) {
  const asked: Asked[] = [];
  const idToken = async (context: { reason: IdTokenReason; signal: AbortSignal; maxAge?: number }) => {
    asked.push({ reason: context.reason, maxAge: context.maxAge, hasMaxAge: 'maxAge' in context });
    const now = Math.floor(Date.now() / 1000);
    const token = await ctx.stack.idp.mintIdToken({ authTime: freshFor.includes(context.reason) ? now : now - 3600 });
    ctx.recorder.add(token);
    return token;
  };
  return { asked, idToken };
}

describe('ID-JAG draft -04 §4.3: insufficient_user_authentication', () => {
  it("the IdP wants a recent sign-in → idToken asked once with 'reauthenticate' and maxAge; the fresh sign-in succeeds", async () => {
    const ctx = await setup({ idp: { maxAge: MAX_AGE } });
    const { asked, idToken } = idTokens(ctx, ['reauthenticate']);
    await expectInitializeOk(await call(ctx, { idToken }));
    expect(asked).toEqual([
      { reason: 'initial', maxAge: undefined, hasMaxAge: false },
      { reason: 'reauthenticate', maxAge: MAX_AGE, hasMaxAge: true },
    ]);
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expect(ctx.stack.as.counters.grant).toBe(1);
  });

  it('a second refusal → insufficient_user_authentication with maxAge, after exactly 2 exchanges; the AS got nothing', async () => {
    const ctx = await setup({ idp: { maxAge: MAX_AGE } });
    const { asked, idToken } = idTokens(ctx, []);
    const err = await expectCaaError(
      call(ctx, { idToken }),
      { code: 'insufficient_user_authentication', stage: 'token_exchange', status: 400, error: 'insufficient_user_authentication' },
      ctx.recorder,
    );
    expect(err).toBeInstanceOf(OAuthResponseError);
    expect(err.maxAge).toBe(MAX_AGE);
    expect(err.toJSON()).toMatchObject({ code: 'insufficient_user_authentication', maxAge: MAX_AGE });
    expect(err.message).toMatch(/^The IdP requires the user to have authenticated more recently within the last 300 s/);
    expect(asked.map((a) => a.reason)).toEqual(['initial', 'reauthenticate']);
    expect(ctx.stack.idp.counters.exchange).toBe(2);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('a string idToken with an old sign-in cannot sign in again → insufficient_user_authentication at once (1 exchange)', async () => {
    const ctx = await setup({ idp: { maxAge: MAX_AGE } });
    const stale = await ctx.stack.idp.mintIdToken({ authTime: Math.floor(Date.now() / 1000) - 3600 });
    ctx.recorder.add(stale);
    const err = await expectCaaError(
      call(ctx, { idToken: stale }),
      { code: 'insufficient_user_authentication', stage: 'token_exchange', status: 400 },
      ctx.recorder,
    );
    expect(err.maxAge).toBe(MAX_AGE);
    expect(ctx.stack.idp.counters.exchange).toBe(1);
    expect(ctx.stack.as.counters.grant).toBe(0);
  });

  it('without max_age in the answer, the reason still says reauthenticate and maxAge is absent', async () => {
    const ctx = await setup();
    const { asked, idToken } = idTokens(ctx, []);
    ctx.stack.idp.override = onTokenPost(() => jsonReply(400, { error: 'insufficient_user_authentication', error_description: 'step up' }));
    const err = await expectCaaError(
      call(ctx, { idToken }),
      { code: 'insufficient_user_authentication', stage: 'token_exchange', status: 400, errorDescription: 'step up' },
      ctx.recorder,
    );
    expect(err.maxAge).toBeUndefined();
    expect(asked).toEqual([
      { reason: 'initial', maxAge: undefined, hasMaxAge: false },
      { reason: 'reauthenticate', maxAge: undefined, hasMaxAge: false },
    ]);
  });

  it('the test IdP accepts a recent sign-in at once (no reauthentication asked)', async () => {
    const ctx = await setup({ idp: { maxAge: MAX_AGE } });
    const { asked, idToken } = idTokens(ctx, ['initial']);
    await expectInitializeOk(await call(ctx, { idToken }));
    expect(asked.map((a) => a.reason)).toEqual(['initial']);
    expect(ctx.stack.idp.counters.exchange).toBe(1);
  });
});
