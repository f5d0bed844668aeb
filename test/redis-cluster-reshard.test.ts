/**
 * Resharding a real 3-master Redis Cluster under a fleet: the slot of the store's sharded pub/sub
 * channel, or of a user's keys, moves to another master (MOVED, ASK, and the old owner dropping the
 * channel's subscribers). A sign-out must still reach every process; one acquisition for the fleet.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from './helpers/eventually.js';
import type { ClientKind } from './helpers/redis-clients.js';
import { keysMatching, moveSlotOf, shardSubscribersAt } from './helpers/redis-cluster.js';
import { useClusterFleet, type ClusterFleet } from './helpers/redis-cluster-fleet.js';
import type { Member } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';

const signedOut = (member: Member, user: string) => member.events.some((e) => e.type === 'signed_out' && (e as { user?: string }).user === user);

describe.skipIf(skipRedis).each<ClientKind>(['node-redis-cluster', 'ioredis-cluster'])('%s while the cluster reshards', (kind) => {
  const fleet: ClusterFleet = useClusterFleet(kind);

  it('the channel\'s slot moved to another master: forget() in one engine still reaches the others', async () => {
    const members = [await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 })];
    const [a, b, c] = members as [Member, Member, Member];
    for (const m of members) expect(await m.call('alice')).toBe(200);
    expect(fleet.stack.idp.counters.exchange).toBe(1);
    const { to } = await moveSlotOf(fleet.cluster!, 'xaa:events');
    // Every engine's subscriber follows the slot to its new master (messages published before it
    // did reach nobody there: sharded pub/sub keeps no backlog).
    for (const deadline = Date.now() + 15_000; (await shardSubscribersAt(to, 'xaa:events')) < members.length; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > deadline) throw new Error(`the subscribers did not follow the channel's slot: ${await shardSubscribersAt(to, 'xaa:events')} of ${members.length} on its new master`);
    }
    await a.xaa.forget('alice');
    await eventually(() => signedOut(b, 'alice') && signedOut(c, 'alice'), 'the sign-out to reach the other engines', 10_000);
  }, 60_000);

  it('the user\'s slot moved to another master (the engines\' clients meet MOVED): forget() deletes every token of theirs there, and a fresh engine acquires afresh', async () => {
    const [a, b] = [await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 })];
    for (const m of [a, b]) expect(await m.call('alice')).toBe(200);
    const [index] = await keysMatching(fleet.cluster!, 'xaa:{*}:i');
    expect(index).toBeDefined();
    await moveSlotOf(fleet.cluster!, index!);
    await a.xaa.forget('alice');
    await eventually(() => signedOut(b, 'alice'), 'the sign-out to reach the other engine');
    expect(await keysMatching(fleet.cluster!, 'xaa:{*}:t:*')).toEqual([]);
    const fresh = await fleet.member({ commandTimeoutMs: 2_000 });
    const exchanges = fleet.stack.idp.counters.exchange;
    expect(await fresh.call('alice')).toBe(200);
    expect(fresh.events.filter((e) => e.type === 'token_shared')).toEqual([]);
    expect(fleet.stack.idp.counters.exchange).toBe(exchanges + 1);
  }, 60_000);
});
