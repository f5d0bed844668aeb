/**
 * `cross-app-access/redis` in one process: several engines (each standing for a process of a fleet,
 * each with its own store and its own Redis client) against a real `redis-server` and the real
 * loopback IdP, authorization server and MCP server. The multi-process proof is redis-fleet.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../src/index.js';
import { redisTokenStore } from '../src/redis.js';
import { gate } from './helpers/gate.js';
import { KEY1, lockTaken, newClient, useRedisFleet } from './helpers/redis-fleet.js';
import { listToolsInit } from './helpers/stack-options.js';
import { skipRedis, startSilentServer } from './servers/redis-server.js';
import { DEFAULT_AS_CLIENT } from './servers/stack.js';

/** Longer than any test's timeout: a wait of this length fails the test instead of being timed. */
const UNREACHABLE_WAIT_MS = 5 * 60_000;

const KEY2 = randomBytes(32).toString('base64');

const fleet = useRedisFleet();
const { member } = fleet;

async function everything(): Promise<string[]> {
  const texts: string[] = [];
  for await (const keys of fleet.raw.scanIterator({ MATCH: '*', COUNT: 100 })) {
    for (const key of keys) {
      texts.push(key);
      const type = await fleet.raw.type(key);
      if (type === 'string') texts.push((await fleet.raw.get(key)) ?? '');
      else if (type === 'set') texts.push(...(await fleet.raw.sMembers(key)));
      else texts.push(`<${type}>`);
    }
  }
  return texts;
}

async function tokenKeys(): Promise<string[]> {
  return (await fleet.raw.keys('xaa:*')).filter((k) => k.includes(':t:'));
}

describe.skipIf(skipRedis)('redisTokenStore against a real redis-server', () => {
  it('a second process finds the first one\'s token in Redis: no acquisition; its warm path never asks Redis', async () => {
    const a = await member();
    const b = await member();
    expect(await a.call()).toBe(200);
    expect(fleet.stack.idp.counters.exchange).toBe(1);
    expect(await tokenKeys()).toHaveLength(1);
    expect(await b.call()).toBe(200);
    expect(b.acquisitions()).toBe(0);
    expect(fleet.stack.idp.counters.exchange).toBe(1);
    expect(fleet.stack.as.counters.grant).toBe(1);
    // Warm: Redis frozen, the next 20 calls are served from the process's LRU: a command sent to the
    // frozen Redis would time out with a diagnostic.
    fleet.redis.freeze();
    try {
      for (let i = 0; i < 20; i++) expect(await b.call()).toBe(200);
      expect(b.diagnostics()).toEqual([]);
    } finally {
      fleet.redis.thaw();
    }
  });

  it('concurrent cold calls in two processes make one acquisition (the fleet lock)', async () => {
    const [a, b] = await Promise.all([member(), member()]);
    const statuses = await Promise.all([...Array.from({ length: 20 }, () => a.call()), ...Array.from({ length: 20 }, () => b.call())]);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(fleet.stack.idp.counters.exchange).toBe(1);
    expect(fleet.stack.as.counters.grant).toBe(1);
    expect(a.acquisitions() + b.acquisitions()).toBe(1);
  });

  it('a 401: the fleet\'s token is compare-and-deleted once; a process holding the replaced token picks up the new one without acquiring', async () => {
    const a = await member();
    const b = await member();
    await a.call();
    await b.call();
    expect(fleet.stack.as.counters.grant).toBe(1);
    fleet.stack.as.revokeAll();
    expect(await a.call()).toBe(200); // 401, compare-and-delete, one acquisition
    expect(fleet.stack.as.counters.grant).toBe(2);
    expect(await b.call()).toBe(200); // 401 for a token the fleet replaced: no acquisition
    expect(fleet.stack.as.counters.grant).toBe(2);
    expect(fleet.stack.idp.counters.exchange).toBe(2);
    expect(b.events.filter((e) => e.type === 'token_invalidated')).toHaveLength(1);
    expect(await a.token()).toBe(await b.token());
  });

  it('forget(user) removes that user\'s tokens from Redis and from every process; other users keep theirs', async () => {
    const a = await member();
    const b = await member();
    await Promise.all([a.call('alice'), a.call('bob')]);
    await Promise.all([b.call('alice'), b.call('bob')]);
    expect(b.acquisitions()).toBe(0);
    expect(b.store.size).toBe(2);
    expect(await tokenKeys()).toHaveLength(2);
    await a.xaa.forget('alice');
    expect(await tokenKeys()).toHaveLength(1);
    // Bob's token and index, and alice's sign-out mark (it expires with the lock TTL); the fleet's discovery results stay.
    const userKeys = (await fleet.raw.keys('xaa:{*')).map((k) => k.replace(/\{[^}]*\}/, '{u}').replace(/:t:.*/, ':t:…')).sort();
    expect(userKeys).toEqual(['xaa:{u}:f', 'xaa:{u}:i', 'xaa:{u}:t:…']);
    await expect.poll(() => b.store.size).toBe(1); // the sign-out message reached b
    const grants = fleet.stack.as.counters.grant;
    expect(await b.call('alice')).toBe(200);
    expect(fleet.stack.as.counters.grant).toBe(grants + 1);
    expect(await b.call('bob')).toBe(200);
    expect(fleet.stack.as.counters.grant).toBe(grants + 1);
  });

  it('a sign-out while another process is acquiring for that user: that acquisition keeps and saves nothing', async () => {
    const a = await member();
    const release = gate();
    const slow = await member({ idTokenGate: release.promise });
    const pending = slow.call('alice');
    await lockTaken(fleet.raw); // slow holds the fleet lock, waiting on its ID token
    await a.xaa.forget('alice');
    release.open();
    expect(await pending).toBe(200); // the request it was for is answered
    expect(await tokenKeys()).toEqual([]); // but nothing came back into Redis
    // Nor into the slow process: its next call acquires again.
    expect(await slow.call('alice')).toBe(200);
    expect(slow.acquisitions()).toBe(2);
  });

  it('a sign-out while another process reads the user ID token, before any lock: that acquisition keeps nothing either', async () => {
    const a = await member();
    const release = gate();
    const asked = gate();
    // Awaited where the slow process reads alice's ID token: tells the test, then holds the read.
    const idTokenGate = { then: (resolve: () => void, reject: (e: unknown) => void) => (asked.open(), release.promise.then(resolve, reject)) } as unknown as Promise<void>;
    const slow = await member({ idTokenGate });
    const pending = slow.call('alice');
    await asked.promise;
    await a.xaa.forget('alice');
    release.open();
    expect(await pending).toBe(200); // the request it was for is answered
    expect(await tokenKeys()).toEqual([]); // nothing came back into Redis
    // Nor into the slow process: its next call acquires again.
    expect(await slow.call('alice')).toBe(200);
    expect(slow.acquisitions()).toBe(2);
  });

  it('nothing in Redis, key or value, holds a token, an ID token, a secret, a user key or a URL', async () => {
    const idTokens: string[] = [];
    const a = await member();
    const xaaFetch = a.xaa.fetch(fetch, {
      user: 'alice@example.com',
      idToken: async () => {
        const idToken = await fleet.stack.idp.mintIdToken({ sub: 'alice@example.com' });
        idTokens.push(idToken);
        return idToken;
      },
    });
    expect((await xaaFetch(fleet.stack.mcp.url, listToolsInit())).status).toBe(200);
    fleet.stack.as.revokeAll();
    expect((await xaaFetch(fleet.stack.mcp.url, listToolsInit())).status).toBe(200);
    const tokens = fleet.stack.mcp.requests.map((r) => r.authorization?.replace(/^Bearer /, '')).filter((t): t is string => !!t);
    expect(new Set(tokens).size).toBe(2);
    const secrets = [...tokens, ...idTokens, DEFAULT_AS_CLIENT.clientSecret!, 'alice@example.com', fleet.stack.mcp.url, fleet.stack.as.issuer, fleet.stack.mcp.url.replace(/^http:\/\//, '')];
    const stored = await everything();
    expect(stored.length).toBeGreaterThanOrEqual(3); // a token, the user's index (and its member)
    for (const text of stored) for (const secret of secrets) expect(text).not.toContain(secret);
    // Each token part of a JWT ID token is base64url: no 16-character run of one appears either.
    for (const text of stored) for (const idToken of idTokens) expect(text).not.toContain(idToken.split('.')[1]!.slice(0, 16));
    const values = await Promise.all((await tokenKeys()).map((k) => fleet.raw.get(k)));
    for (const value of values) expect(value).toMatch(/^x1\.[\w-]+\.[\w-]{12}\.[\w-]{16}\.[\w-]+$/);
  });

  it('key rotation (namingKey set, as docs/fleets.md says): a new first key keeps the old entries readable; a ring without the old key acquires again, with a diagnostic', async () => {
    const namingKey = randomBytes(32).toString('base64');
    const old = await member({ keys: [KEY1], namingKey });
    await old.call();
    const rotated = await member({ keys: [KEY2, KEY1], namingKey });
    expect(await rotated.call()).toBe(200);
    expect(rotated.acquisitions()).toBe(0);
    const stranger = await member({ keys: [KEY2], namingKey });
    expect(await stranger.call()).toBe(200);
    expect(stranger.acquisitions()).toBe(1);
    expect(stranger.diagnostics().join('\n')).toMatch(/could not be decrypted \(sealed with a key that is not in encryptionKeys\)/);
    // What it wrote is sealed with KEY2: the rotated ring reads it, the old ring does not.
    const later = await member({ keys: [KEY2, KEY1], namingKey });
    expect(await later.call()).toBe(200);
    expect(later.acquisitions()).toBe(0);
  });

  it('key rotation without namingKey: the names are derived from the first key, so the rotated ring looks elsewhere (a cold start, no diagnostic) and never reads the old entries', async () => {
    const old = await member({ keys: [KEY1] });
    await old.call();
    const rotated = await member({ keys: [KEY2, KEY1] });
    expect(await rotated.call()).toBe(200);
    expect(rotated.acquisitions()).toBe(1);
    expect(rotated.diagnostics()).toEqual([]);
    expect(await tokenKeys()).toHaveLength(2);
  });

  it('a value with a bad tag, or moved under another user\'s key, does not decrypt: acquired again, with a diagnostic, never used', async () => {
    const a = await member();
    await a.call('alice');
    const [aliceKey] = await tokenKeys();
    await a.call('bob');
    const [bobKey] = (await tokenKeys()).filter((k) => k !== aliceKey);
    // Bob's entry replaced by Alice's ciphertext: the associated data (the cache key) does not match.
    await fleet.raw.set(bobKey!, (await fleet.raw.get(aliceKey!))!, { PX: 60_000 });
    const b = await member();
    expect(await b.call('bob')).toBe(200);
    expect(b.acquisitions()).toBe(1);
    expect(b.diagnostics().join('\n')).toMatch(/could not be decrypted/);
    const bobSent = fleet.stack.mcp.requests.at(-1)!.authorization;
    const aliceToken = await a.token('alice');
    expect(bobSent).not.toBe(`Bearer ${aliceToken}`);
    // A flipped bit in Alice's ciphertext: the GCM tag fails.
    // (Not the last character: in base64 its low bits may be padding, so changing it may change nothing.)
    const value = (await fleet.raw.get(aliceKey!))!;
    const at = value.length - 8;
    const flipped = value[at] === 'A' ? 'B' : 'A';
    await fleet.raw.set(aliceKey!, value.slice(0, at) + flipped + value.slice(at + 1), { PX: 60_000 });
    const c = await member();
    expect(await c.call('alice')).toBe(200);
    expect(c.acquisitions()).toBe(1);
    expect(c.diagnostics().join('\n')).toMatch(/could not be decrypted \(Unsupported state or unable to authenticate data\)/);
    // Garbage that is not a sealed value at all.
    await fleet.raw.set(aliceKey!, 'garbage', { PX: 60_000 });
    const d = await member();
    expect(await d.call('alice')).toBe(200);
    expect(d.acquisitions()).toBe(1);
    expect(d.diagnostics()).toHaveLength(1);
  });

  it('Redis killed mid-run, then restarted: every request succeeds, a diagnostic each way, Redis used again after', async () => {
    // A lock wait longer than the test's timeout: a request that waited on the fleet lock would fail the test.
    const a = await member({ lockWaitMs: UNREACHABLE_WAIT_MS });
    expect(await a.call('u0')).toBe(200);
    await fleet.redis.kill();
    for (let i = 1; i <= 5; i++) expect(await a.call(`u${i}`)).toBe(200);
    expect(a.diagnostics().filter((m) => /^Redis failed/.test(m))).toHaveLength(1);
    await fleet.redis.start();
    await expect.poll(async () => (await a.call(`late${Date.now()}`), a.diagnostics().some((m) => /^Redis answers again/.test(m))), { timeout: 10_000, interval: 200 }).toBe(true);
    // Used again: a token acquired now is in Redis, and another process takes it from there.
    expect(await a.call('after')).toBe(200);
    const b = await member();
    expect(await b.call('after')).toBe(200);
    expect(b.acquisitions()).toBe(0);
  }, 30_000);

  it('Redis frozen mid-run (accepts, never answers): cold calls succeed within the command timeout, with a diagnostic', async () => {
    const a = await member({ commandTimeoutMs: 150, lockWaitMs: UNREACHABLE_WAIT_MS });
    expect(await a.call('u0')).toBe(200);
    fleet.redis.freeze();
    try {
      const statuses = await Promise.all(['u1', 'u2', 'u3'].map((u) => a.call(u)));
      expect(statuses).toEqual([200, 200, 200]);
      expect(await a.call('u4')).toBe(200);
      expect(a.diagnostics().join('\n')).toMatch(/Redis failed \(no answer within 150 ms\)/);
    } finally {
      fleet.redis.thaw();
    }
  });

  it('a client that never connects (a TCP server that accepts and stays silent): requests succeed in bounded time; forget() says Redis was not reached', async () => {
    const silent = await startSilentServer();
    fleet.onCleanup(() => silent.close());
    const client = newClient(silent.url, 60_000);
    client.on('error', () => {});
    client.connect().catch(() => {}); // not awaited, as applications often do
    fleet.onCleanup(() => client.destroy());
    const a = await member({ client, lockWaitMs: UNREACHABLE_WAIT_MS });
    expect(await Promise.all([a.call('alice'), a.call('alice'), a.call('bob')])).toEqual([200, 200, 200]);
    expect(fleet.stack.idp.counters.exchange).toBe(2);
    expect(a.diagnostics().join('\n')).toMatch(/Redis failed \(the client is not connected/);
    await expect(a.xaa.forget('alice')).rejects.toMatchObject({ code: 'network_error' });
    expect(a.store.size).toBe(1); // alice's token dropped here all the same
  });

  it('an option given as undefined means its default (a value read from process.env)', async () => {
    const defaults = { prefix: undefined, max: undefined, commandTimeoutMs: undefined, lockTtlMs: undefined, lockWaitMs: undefined, retryAfterMs: undefined, namingKey: undefined };
    const a = await member(defaults);
    expect(await a.call()).toBe(200);
    expect(await tokenKeys()).toHaveLength(1); // under the default prefix, xaa:
    // Default naming too: a process with no such options finds the token under the same name.
    const b = await member();
    expect(await b.call()).toBe(200);
    expect(b.acquisitions()).toBe(0);
  });

  it('configuration errors are typed: an empty key list, a key that is not 32 bytes, a bad option', async () => {
    const client = fleet.raw;
    const made = (keys: unknown, more: object = {}) => () => redisTokenStore({ client, encryptionKeys: keys as never, ...more });
    for (const [keys, option] of [
      [[], 'encryptionKeys'],
      [undefined, 'encryptionKeys'],
      [[new Uint8Array(31)], 'encryptionKeys[0]'],
      [[KEY1, randomBytes(16).toString('base64')], 'encryptionKeys[1]'],
      [['not base64!'], 'encryptionKeys[0]'],
      [[randomBytes(33)], 'encryptionKeys[0]'],
    ] as const) {
      let error: unknown;
      try {
        made(keys)();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ code: 'invalid_option', stage: 'config', option });
    }
    expect(made([KEY1], { commandTimeoutMs: 0 })).toThrow(ConfigurationError);
    expect(() => redisTokenStore({ client: {} as never, encryptionKeys: [KEY1] })).toThrow(ConfigurationError);
    expect(made([KEY1, KEY2, randomBytes(32).toString('base64url')])).not.toThrow();
  });
});
