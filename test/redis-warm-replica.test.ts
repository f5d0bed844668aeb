/**
 * Replicas that start warm: discovery results (protected-resource, authorization-server and IdP
 * metadata) are kept in Redis next to the tokens, sealed like them, for the hour they are kept in
 * memory. A fresh process whose store holds the token and the discovery results makes no request
 * but the call itself; a result altered in Redis, or copied under another name, does not open: it
 * is discovered again, so whoever can write to Redis cannot change where credentials or tokens go.
 */
import { describe, expect, it } from 'vitest';
import { skipRedis } from './servers/redis-server.js';
import { useRedisFleet } from './helpers/redis-fleet.js';

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
});
