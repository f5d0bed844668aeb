/**
 * Fleet-wide sign-out in a busy process: `forget()` in one process must drop the tokens (and the
 * identity binding) of every user another process holds tokens for, however many users that
 * process serves. Two engines with their own Redis clients stand for two processes; they share
 * nothing but a real `redis-server`.
 */
import { describe, expect, it } from 'vitest';
import { messageTap, useRedisFleet } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';

const fleet = useRedisFleet();

// More users than any bounded table of the store's (10,000) would hold.
const OTHER_USERS = 10_001;
const CONCURRENCY = 64;

describe.skipIf(skipRedis)('fleet-wide sign-out in a process serving more than 10,000 users', () => {
  it('forget(kiosk-1) in process 1 reaches process 2, where kiosk-1 stayed warm while 10,001 other users were served: the key\'s next holder gets a token of their own', async () => {
    const { stack } = fleet;
    const one = await fleet.member();
    const tap = messageTap();
    const two = await fleet.member({ max: OTHER_USERS + 10, onMessage: tap.onMessage });
    const url = stack.mcp.url;

    // The kiosk's first holder, in process 2.
    let holder = 'person-a';
    const kiosk = () => two.xaa.getAccessToken({ user: 'kiosk-1', idToken: () => stack.idp.mintIdToken({ sub: holder }), url });
    const first = (await kiosk()).token;
    expect(stack.as.verifyAccessToken(first)?.sub).toBe('person-a');

    // 10,001 other users, each a miss and an acquisition in process 2 (one ID token names them all:
    // keys are bound per key), while kiosk-1 keeps being served from the warm path.
    const others = await stack.idp.mintIdToken({ sub: 'someone-else', expiresInSeconds: 3600 });
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < OTHER_USERS) {
          const user = `user-${next++}`;
          await two.xaa.getAccessToken({ user, idToken: () => others, url });
          if (next % 1000 === 0) expect((await kiosk()).token).toBe(first);
        }
      }),
    );
    expect(two.store.size).toBe(OTHER_USERS + 1);
    expect((await kiosk()).token).toBe(first);

    // Sign-out in process 1, for the kiosk and for the first of the others.
    await one.xaa.forget('kiosk-1');
    await one.xaa.forget('user-0');
    await tap.reached(fleet.raw, 'after the sign-outs');
    expect(two.store.size).toBe(OTHER_USERS - 1);

    // The next holder: a token of their own, acquired with their ID token (the key's identity
    // binding went too, or the acquisition would be refused as user_mismatch).
    holder = 'person-b';
    const second = (await kiosk()).token;
    expect(second).not.toBe(first);
    expect(stack.as.verifyAccessToken(second)?.sub).toBe('person-b');
  }, 120_000);

  it('events: a token taken from the shared store is token_shared; forget() is signed_out here, and in the other process once its message arrives; no event carries a token', async () => {
    const { stack } = fleet;
    const one = await fleet.member();
    const tap = messageTap();
    const two = await fleet.member({ onMessage: tap.onMessage });
    expect(await one.call('alice')).toBe(200);
    const token = await one.token('alice');
    expect(await two.call('alice')).toBe(200);
    const issued = one.events.find((e) => e.type === 'token_issued');
    const fingerprint = issued?.type === 'token_issued' ? issued.fingerprint : undefined;
    expect(fingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(two.events.filter((e) => e.type === 'token_shared')).toEqual([
      { type: 'token_shared', user: 'alice', resource: stack.mcp.resource, fingerprint, expiresIn: expect.any(Number), durationMs: expect.any(Number) },
    ]);
    expect(one.events.filter((e) => e.type === 'token_shared')).toEqual([]);

    await one.xaa.forget('alice');
    await one.xaa.forget('nobody'); // forget ran, whether or not there was anything to drop
    await tap.reached(fleet.raw, 'after the sign-outs');
    expect(one.events.filter((e) => e.type === 'signed_out')).toEqual([
      { type: 'signed_out', by: 'this_process', user: 'alice', durationMs: expect.any(Number) },
      { type: 'signed_out', by: 'this_process', user: 'nobody', durationMs: expect.any(Number) },
    ]);
    // Process 2 held tokens for alice only.
    expect(two.events.filter((e) => e.type === 'signed_out')).toEqual([{ type: 'signed_out', by: 'another_process', user: 'alice', durationMs: 0 }]);
    for (const event of [...one.events, ...two.events]) expect(JSON.stringify(event)).not.toContain(token);
  });
});

describe.skipIf(skipRedis)('a sign-out during an acquisition that outlasts the sign-out mark, in a process the message does not reach', () => {
  it('the acquiring process does not bring the token back into Redis: a third process acquires afresh', async () => {
    const { stack } = fleet;
    const lockTtlMs = 150;
    // Process B: no subscriber connection (its client cannot duplicate), and a grant that takes 4
    // marks' lifetimes, while it holds the fleet lock (extended meanwhile).
    const raw = await fleet.connected();
    const unsubscribed = { get isReady() { return raw.isReady; }, sendCommand: (args: string[]) => raw.sendCommand(args) };
    let grantStarted!: () => void;
    const granting = new Promise<void>((resolve) => (grantStarted = resolve));
    const slowGrant: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input) === stack.as.tokenEndpoint) {
        grantStarted();
        await new Promise((resolve) => setTimeout(resolve, 4 * lockTtlMs));
      }
      return fetch(input, init);
    };
    const b = await fleet.member({ client: unsubscribed as never, lockTtlMs, engine: { oauthFetch: slowGrant } });
    const a = await fleet.member({ lockTtlMs });
    const acquiring = b.token('alice');
    await granting;
    await a.xaa.forget('alice');
    await acquiring;
    // B learned of the sign-out from the mark, while acquiring.
    expect(b.events.some((e) => e.type === 'signed_out')).toBe(true);
    // A fresh process after the sign-out: Redis must hold no token of alice's.
    const c = await fleet.member({ lockTtlMs });
    const exchanges = stack.idp.counters.exchange;
    await c.token('alice');
    expect(c.events.filter((e) => e.type === 'token_shared')).toEqual([]);
    expect(stack.idp.counters.exchange).toBe(exchanges + 1);
  });
});
