/**
 * Redis names are keyed hashes (HMAC under a naming secret): someone who reads Redis (a replica, a
 * backup, MONITOR) cannot test a list of user keys against them. Read from a real `redis-server`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../src/index.js';
import { redisTokenStore } from '../src/redis.js';
import { KEY1, messageTap, useRedisFleet } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';

const fleet = useRedisFleet();

const USERS = ['alice@example.com', 'bob@example.com'];

/** What anyone could compute from a user key without a secret: the key, and SHA-256 of it in the usual spellings. */
function unkeyed(user: string): string[] {
  const forms = [user];
  for (const text of [user, `user\u0000${user}`, `user:${user}`]) {
    const digest = createHash('sha256').update(text).digest();
    for (const spelled of [digest.toString('hex'), digest.toString('base64url'), digest.toString('base64')]) forms.push(spelled.slice(0, 16));
  }
  return forms;
}

/** Every name in Redis, after the members' work. */
async function names(): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of fleet.raw.scanIterator({ MATCH: '*', COUNT: 100 })) found.push(...keys);
  return found;
}

describe.skipIf(skipRedis)('Redis names under a naming secret', () => {
  it('no name, nor the sign-out message, holds a user key or an unkeyed SHA-256 of one (default naming secret and namingKey alike)', async () => {
    const tap = messageTap();
    const derived = await fleet.member({ onMessage: tap.onMessage });
    const named = await fleet.member({ namingKey: randomBytes(32), prefix: 'other:' });
    for (const user of USERS) {
      expect(await derived.call(user)).toBe(200);
      expect(await named.call(user)).toBe(200);
    }
    await derived.xaa.forget(USERS[0]!);
    await tap.reached(fleet.raw, 'after the sign-out');
    const seen = await names();
    expect(seen.filter((n) => n.includes(':t:'))).toHaveLength(3);
    const messages = tap.received().filter((m) => m.startsWith('f:'));
    expect(messages).toHaveLength(1);
    for (const text of [...seen, ...messages]) for (const form of USERS.flatMap(unkeyed)) expect(text).not.toContain(form);
  });

  it('the names follow the naming secret: the same namingKey with another encryption key finds the token; another namingKey does not', async () => {
    const namingKey = randomBytes(32).toString('base64');
    const first = await fleet.member({ namingKey });
    expect(await first.call()).toBe(200);
    const before = await names();
    // Another process of the fleet, its encryption key rotated: same names, the token is found.
    const rotated = await fleet.member({ namingKey, keys: [randomBytes(32), KEY1] });
    expect(await rotated.call()).toBe(200);
    expect(rotated.acquisitions()).toBe(0);
    expect((await names()).sort()).toEqual(before.sort());
    // A process with another naming secret: other names, nothing in common.
    const stranger = await fleet.member({ namingKey: new Uint8Array(randomBytes(32)) });
    expect(await stranger.call()).toBe(200);
    expect(stranger.acquisitions()).toBe(1);
    // Per-user names (the braces hold the user's keyed hash); the discovery results are the fleet's.
    const added = (await names()).filter((n) => !before.includes(n) && n.includes('{'));
    expect(added.length).toBeGreaterThanOrEqual(2);
    const hashOf = (name: string) => /\{([^}]*)\}/.exec(name)?.[1];
    expect(added.map(hashOf)).not.toContain(hashOf(before.find((n) => n.includes('{'))!));
  });

  it('a namingKey that is not 32 bytes is a ConfigurationError naming the option', () => {
    const client = fleet.raw;
    for (const namingKey of [randomBytes(16), randomBytes(16).toString('base64'), 'not base64!', 42]) {
      let error: unknown;
      try {
        redisTokenStore({ client, encryptionKeys: [KEY1], namingKey: namingKey as never });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ code: 'invalid_option', stage: 'config', option: 'namingKey' });
      expect((error as Error).message).toMatch(/32 bytes/);
    }
  });
});
