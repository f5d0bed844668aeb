/**
 * The fleet lock outlives a slow acquisition: its holder extends it while it acquires, so another
 * process waiting for the same token keeps waiting (bounded by how long an acquisition of its own
 * could take) instead of starting the same acquisition when the lock's TTL or `lockWaitMs` runs
 * out; a holder that dies still releases by expiry, and a waiter then acquires. A real
 * `redis-server`, real loopback servers; the slow acquisition is an ID token that is held back.
 */
import { gate } from './helpers/gate.js';
import { describe, expect, it } from 'vitest';
import { skipRedis } from './servers/redis-server.js';
import { lockTaken, useRedisFleet, type Client } from './helpers/redis-fleet.js';

const fleet = useRedisFleet();
const LOCK_TTL_MS = 150;


/** Waits until the lock has stood for `ms` (it would have expired thrice over without extension). */
async function standsFor(raw: Client, name: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    expect(await raw.pTTL(name)).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.skipIf(skipRedis)('the fleet lock and a slow acquisition', () => {
  it('the holder extends the lock: a waiter past lockTtlMs and lockWaitMs still waits, and gets the holder\'s token; one grant', async () => {
    const slow = gate();
    const holder = await fleet.member({ lockTtlMs: LOCK_TTL_MS, lockWaitMs: 50, idTokenGate: slow.promise });
    const waiter = await fleet.member({ lockTtlMs: LOCK_TTL_MS, lockWaitMs: 50 });
    const held = holder.token();
    const name = await lockTaken(fleet.raw);
    const waited = waiter.token();
    await standsFor(fleet.raw, name, LOCK_TTL_MS * 4);
    slow.open();
    const [a, b] = await Promise.all([held, waited]);
    expect(b).toBe(a);
    expect(fleet.stack.as.counters.grant).toBe(1);
    expect(waiter.acquisitions()).toBe(0);
  });

  it('a holder that dies mid-acquisition releases by expiry: the waiter then acquires on its own', async () => {
    const never = gate();
    const client = await fleet.connected();
    const holder = await fleet.member({ lockTtlMs: LOCK_TTL_MS, lockWaitMs: 50, idTokenGate: never.promise, client });
    const waiter = await fleet.member({ lockTtlMs: LOCK_TTL_MS, lockWaitMs: 50 });
    const held = holder.token().catch(() => undefined);
    await lockTaken(fleet.raw);
    const waited = waiter.token();
    // The holder's process dies: its connection goes, nothing extends the lock any more.
    client.destroy();
    expect(typeof (await waited)).toBe('string');
    expect(waiter.acquisitions()).toBe(1);
    never.open();
    await held;
  });
});
