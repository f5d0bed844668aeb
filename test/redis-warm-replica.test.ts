/**
 * Replicas that start warm: discovery results (protected-resource, authorization-server and IdP
 * metadata, and resources learned from a 401 with no `resource` configured) are kept in Redis next
 * to the tokens, sealed like them, for the hour they are kept in memory. A fresh process whose store
 * holds the token and the discovery results makes no request but the call itself; a result altered
 * in Redis, copied under another name, or sealed under a key the fleet does not have, does not
 * open: it is discovered again, so whoever can write to Redis cannot change where credentials or
 * tokens go.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redisTokenStore } from '../src/redis.js';
import { skipRedis } from './servers/redis-server.js';
import { startStack } from './servers/stack.js';
import { useRedisFleet } from './helpers/redis-fleet.js';

/** Shared by the members and the forger below: the forger knows the names, not the encryption key. */
const NAMING_KEY = new Uint8Array(randomBytes(32));

const fleet = useRedisFleet();

/** Every request the loopback servers have seen so far, by kind. */
function seen() {
  const { idp, as, mcp } = fleet.stack;
  return {
    metadata: idp.counters.metadata + as.counters.metadata + mcp.counters.prm,
    exchanges: idp.counters.exchange,
    grants: as.counters.grant,
    mcp: mcp.counters.requests,
  };
}

describe.skipIf(skipRedis)('a fresh replica', () => {
  it('finds the token and every discovery result in Redis: its first call is the only request it makes', async () => {
    const first = await fleet.member();
    expect(await first.call()).toBe(200);
    const before = seen();
    expect(before.metadata).toBeGreaterThanOrEqual(3);

    const fresh = await fleet.member();
    expect(await fresh.call()).toBe(200);
    const after = seen();
    expect(after.metadata - before.metadata).toBe(0);
    expect(after.exchanges - before.exchanges).toBe(0);
    expect(after.grants - before.grants).toBe(0);
    expect(after.mcp - before.mcp).toBe(1);
    expect(fresh.events.filter((e) => e.type === 'discovery')).toEqual([]);
  });

  it('a result altered in Redis, or swapped with another, does not open: it is discovered again, with a diagnostic', async () => {
    const first = await fleet.member();
    expect(await first.call()).toBe(200);
    const names = (await fleet.raw.keys('xaa:d:*')).sort();
    expect(names.length).toBeGreaterThanOrEqual(3);
    const values = await Promise.all(names.map((name) => fleet.raw.get(name)));
    // One altered in place (its ciphertext), the others rotated under each other's names.
    const altered = values[0]!.slice(0, -4) + (values[0]!.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await fleet.raw.set(names[0]!, altered, { PX: 60_000 });
    for (let i = 1; i < names.length; i++) await fleet.raw.set(names[i]!, values[i === names.length - 1 ? 1 : i + 1]!, { PX: 60_000 });
    const before = seen();

    const fresh = await fleet.member();
    expect(await fresh.call()).toBe(200);
    expect(seen().metadata - before.metadata).toBeGreaterThanOrEqual(names.length - 1);
    expect(fresh.diagnostics().some((m) => m.includes('discovery result in Redis could not be decrypted'))).toBe(true);
    // Nothing unsealed was used: the values Redis holds now are this process's own, and open.
    expect(fleet.stack.as.leaks()).toEqual([]);
  });

  it('a result replayed after its hour (the same sealed value set again with a fresh TTL) is not used: its end is sealed with it, so it is discovered again', async () => {
    const first = await fleet.member();
    expect(await first.call()).toBe(200);
    const names = (await fleet.raw.keys('xaa:d:*')).sort();
    expect(names.length).toBeGreaterThanOrEqual(3);
    const values = await Promise.all(names.map((name) => fleet.raw.get(name)));
    // Someone who can write to Redis keeps the old values alive: set again, each with a fresh TTL.
    for (let i = 0; i < names.length; i++) await fleet.raw.set(names[i]!, values[i]!, { PX: 3_600_000 });
    const before = seen();

    // A replica two hours later: every one of those results is past its hour.
    const later = await fleet.member({ engine: { now: () => Date.now() + 2 * 3_600_000 } });
    const idToken = () => fleet.stack.idp.mintIdToken({ sub: 'alice', expiresInSeconds: 4 * 3_600 });
    expect(await later.xaa.getAccessToken({ user: 'alice', idToken, url: fleet.stack.mcp.url })).toBeDefined();
    expect(seen().metadata - before.metadata).toBeGreaterThanOrEqual(names.length);
  });
});

describe.skipIf(skipRedis)('a fresh replica, no resource configured (learned from a 401)', () => {
  const learning = { learnResource: true, namingKey: NAMING_KEY } as const;

  /** The names of the discovery results in Redis, once the learning process's background writes landed (4: PRM, AS, IdP, learned). */
  async function documents(): Promise<string[]> {
    const deadline = Date.now() + 5_000;
    while (true) {
      const names = (await fleet.raw.keys('xaa:d:*')).sort();
      if (names.length >= 4 || Date.now() > deadline) return names;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it('finds the learned resource, its metadata and the token in Redis: no probe, no metadata request, the call is its only request', async () => {
    const first = await fleet.member(learning);
    expect(await first.call()).toBe(200);
    expect(fleet.stack.mcp.counters.unauthorized).toBe(1); // the first process probed
    expect(await documents()).toHaveLength(4);
    const before = { ...seen(), unauthorized: fleet.stack.mcp.counters.unauthorized };

    const fresh = await fleet.member(learning);
    expect(await fresh.call()).toBe(200);
    const after = seen();
    expect(fleet.stack.mcp.counters.unauthorized - before.unauthorized).toBe(0);
    expect(after.metadata - before.metadata).toBe(0);
    expect(after.exchanges - before.exchanges).toBe(0);
    expect(after.grants - before.grants).toBe(0);
    expect(after.mcp - before.mcp).toBe(1);
    expect(fresh.events.filter((e) => e.type === 'discovery')).toEqual([]);
    expect(fresh.diagnostics()).toEqual([]);
  });

  it('a learned record forged under another key (pointing at another authorization server), or altered, does not open: the replica probes and discovers; nothing goes to the forged server', async () => {
    const evil = await startStack();
    fleet.onCleanup(() => evil.close());
    const first = await fleet.member(learning);
    expect(await first.call()).toBe(200);
    const names = await documents();
    const genuine = new Map(await Promise.all(names.map(async (name) => [name, await fleet.raw.get(name)] as const)));

    // Someone who can write to Redis and knows the names, but not the encryption key.
    const forger = redisTokenStore({ client: await fleet.connected(), encryptionKeys: [randomBytes(32)], namingKey: NAMING_KEY });
    fleet.onCleanup(() => forger.close());
    const origin = new URL(fleet.stack.mcp.url).origin;
    forger.writeDocument!(`learned ${origin}`, { resources: [{ prm: { resource: fleet.stack.mcp.url, authorizationServers: [evil.as.issuer], url: evil.mcp.prmUrl } }] }, 60_000);
    let learnedName: string | undefined;
    for (const deadline = Date.now() + 5_000; !learnedName && Date.now() < deadline; await new Promise((r) => setTimeout(r, 10))) {
      for (const name of names) if ((await fleet.raw.get(name)) !== genuine.get(name)) learnedName = name;
    }
    expect(learnedName).toBeDefined();

    for (const variant of ['forged', 'altered'] as const) {
      if (variant === 'altered') {
        const value = genuine.get(learnedName!)!;
        await fleet.raw.set(learnedName!, value.slice(0, -6) + (value.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA'), { PX: 60_000 });
      }
      const probes = fleet.stack.mcp.counters.unauthorized;
      const fresh = await fleet.member(learning);
      expect(await fresh.call()).toBe(200);
      expect(fleet.stack.mcp.counters.unauthorized - probes).toBe(1); // learned as usual, from the 401
      expect(fresh.diagnostics().some((m) => m.includes('discovery result in Redis could not be decrypted'))).toBe(true);
    }
    expect({ metadata: evil.as.counters.metadata, grant: evil.as.counters.grant, prm: evil.mcp.counters.prm, mcp: evil.mcp.counters.requests }).toEqual({ metadata: 0, grant: 0, prm: 0, mcp: 0 });
    expect(fleet.stack.as.leaks()).toEqual([]);
  });
});
