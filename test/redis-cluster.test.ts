/**
 * `redisTokenStore` on a real 3-master Redis Cluster (node-redis's `createCluster`, ioredis's
 * `Cluster`) and on ioredis against a single `redis-server`: one acquisition per key for the whole
 * fleet (real processes, and several engines with many users whose keys spread over every master),
 * again after a revocation; a sign-out reaching every process (sharded pub/sub on the cluster); a
 * master killed mid-run: every request answered, or failed with a typed error, never hung, never
 * an unhandled rejection, never another user's token.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CrossAppAccessError } from '../src/errors.js';
import { redisTokenStore } from '../src/redis.js';
import { eventually } from './helpers/eventually.js';
import { useFleetProcesses } from './helpers/fleet-process.js';
import type { ClientKind } from './helpers/redis-clients.js';
import { useClusterFleet, type ClusterFleet } from './helpers/redis-cluster-fleet.js';
import type { Member } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';

const script = fileURLToPath(new URL('./fixtures/fleet-client.ts', import.meta.url));
const KEY = randomBytes(32).toString('base64');
// Coordination is proven here, not latency (see redis-fleet.test.ts): a starved CI event loop must
// not turn a slow answer into a second acquisition.
const COMMAND_TIMEOUT_MS = '2000';

interface Outcome {
  ok: number;
  exchanges: number;
  issued: number;
  diagnostics: string[];
}

const signedOut = (member: Member, user: string) => member.events.some((e) => e.type === 'signed_out' && (e as { user?: string }).user === user);

describe.skipIf(skipRedis).each<ClientKind>(['node-redis-cluster', 'ioredis-cluster', 'ioredis'])('redisTokenStore on %s', (kind) => {
  const fleet: ClusterFleet = useClusterFleet(kind);
  const start = useFleetProcesses();

  it('4 processes × 50 concurrent cold calls → 1 token exchange and 1 grant; after a revocation, 4 × 50 → exactly 1 more; forget() in one reaches the other three', async () => {
    const { stack } = fleet;
    const idToken = await stack.idp.mintIdToken({ sub: 'alice', expiresInSeconds: 3600 });
    const args = [fleet.urls.join(','), stack.mcp.url, stack.idp.issuer, stack.idp.clientId, idToken, KEY, COMMAND_TIMEOUT_MS, kind];
    const processes = await Promise.all([1, 2, 3, 4].map(() => start(script, args)));
    const run = () => Promise.all(processes.map((p) => p.ask<Outcome>('go 50')));

    const cold = await run();
    expect(cold.map((o) => o.ok)).toEqual([50, 50, 50, 50]);
    expect(stack.idp.counters.exchange).toBe(1);
    expect(stack.as.counters.grant).toBe(1);
    expect(cold.flatMap((o) => o.diagnostics)).toEqual([]);

    stack.as.revokeAll();
    const revoked = await run();
    expect(revoked.map((o) => o.ok)).toEqual([50, 50, 50, 50]);
    expect(stack.idp.counters.exchange).toBe(2);
    expect(stack.as.counters.grant).toBe(2);
    expect(revoked.reduce((sum, o) => sum + o.issued, 0)).toBe(1);

    // Sign-out in process 1 reaches processes 2 to 4; the next call there acquires afresh.
    await processes[0]!.ask('forget');
    const others = processes.slice(1);
    for (const deadline = Date.now() + 10_000; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
      const seen = await Promise.all(others.map((p) => p.ask<{ signedOut: number }>('signed-out')));
      if (seen.every((s) => s.signedOut === 1)) break;
      if (Date.now() > deadline) throw new Error(`the sign-out did not reach every process: ${JSON.stringify(seen)}`);
    }
    expect((await processes[1]!.ask<Outcome>('go 1')).issued).toBe(1);
    expect(stack.idp.counters.exchange).toBe(3);
    await Promise.all(processes.map((p) => p.exit()));
  }, 60_000);

  it('3 engines × 40 users × 5 concurrent calls: one acquisition per user for the fleet, the keys spread over every node', async () => {
    const members = [await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 })];
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}@example.com`);
    const statuses = await Promise.all(members.flatMap((m) => users.flatMap((user) => Array.from({ length: 5 }, () => m.call(user)))));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(fleet.stack.idp.counters.exchange).toBe(users.length);
    expect(members.reduce((sum, m) => sum + m.acquisitions(), 0)).toBe(users.length);
    expect(members.flatMap((m) => m.diagnostics())).toEqual([]);
    const perNode = await fleet.keysPerNode();
    expect(perNode.every((n) => n > 0)).toBe(true);
    console.log(`${kind}: ${statuses.length} calls, ${fleet.stack.idp.counters.exchange} exchanges; keys per node ${perNode.join(', ')}`);
  }, 60_000);

  it('forget() in one engine reaches every other: each drops the user (signed_out), and the next call there acquires afresh', async () => {
    // A generous command timeout: a cluster subscriber's start (slot discovery) on a busy machine.
    const [a, b, c] = [await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 })];
    for (const m of [a, b, c]) expect(await m.call('alice')).toBe(200);
    expect(fleet.stack.idp.counters.exchange).toBe(1);
    await a.xaa.forget('alice');
    await eventually(() => signedOut(b, 'alice') && signedOut(c, 'alice'), 'the sign-out to reach the other engines');
    expect(await b.call('alice')).toBe(200);
    expect(fleet.stack.idp.counters.exchange).toBe(2);
    expect(b.events.findLastIndex((e) => e.type === 'token_issued')).toBeGreaterThan(b.events.findIndex((e) => e.type === 'signed_out'));
  });

  // Last: the killed master stays dead for the rest of this describe.
  it.runIf(kind !== 'ioredis')('a master killed mid-run: every request answered or failed with a typed error, none hung, no unhandled rejection, never another user\'s token', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const members = [await fleet.member(), await fleet.member(), await fleet.member()];
      const users = Array.from({ length: 60 }, (_, i) => `user-${i}@example.com`);
      // Warm: the first 30 users' tokens are in Redis, spread over the three masters.
      for (const m of members) await Promise.all(users.slice(0, 30).map((user) => m.token(user)));
      const outcomes: Array<{ user: string; token?: string; error?: unknown }> = [];
      let killed = false;
      const hung = (ms: number) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`a request hung for ${ms} ms`)), ms));
      const oneRound = (round: number) =>
        Promise.all(
          members.flatMap((m, i) =>
            users.slice(round % 2 ? 30 : 0).filter((_, j) => (j + i + round) % 3 === 0).map(async (user) => {
              try {
                outcomes.push({ user, token: await Promise.race([m.token(user), hung(15_000)]) });
              } catch (error) {
                outcomes.push({ user, error });
              }
            }),
          ),
        );
      for (let round = 0; round < 8; round++) {
        if (round === 3) {
          await fleet.cluster!.kill(0);
          killed = true;
        }
        // After the kill, some users' forget() must fail typed (their slot has no master) or pass.
        if (killed) await Promise.all(members.map((m) => m.xaa.forget(`user-${round}@example.com`).catch((error: unknown) => outcomes.push({ user: 'forget', error }))));
        await oneRound(round);
      }
      const errors = outcomes.filter((o) => o.error !== undefined);
      expect(errors.filter((o) => !(o.error instanceof CrossAppAccessError)).map((o) => String(o.error))).toEqual([]);
      const answered = outcomes.filter((o) => o.token !== undefined);
      // Never another user's token: each is the AS's token for exactly that user.
      expect(answered.filter((o) => fleet.stack.as.verifyAccessToken(o.token!)?.sub !== o.user).map((o) => o.user)).toEqual([]);
      // The kill was noticed (Redis failed in some engine), and requests went on being answered.
      expect(members.some((m) => m.diagnostics().some((d) => d.startsWith('Redis failed')))).toBe(true);
      expect(answered.length).toBeGreaterThan(outcomes.length / 2);
      console.log(`${kind}, a master killed: ${answered.length} answered, ${errors.length} failed typed (${[...new Set(errors.map((o) => (o.error as CrossAppAccessError).code))].join(', ')})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 90_000);
});

// Redis before 7 has no sharded pub/sub: SPUBLISH renamed away stands for it, and the store falls
// back to classic pub/sub (PUBLISH reaches every node of the cluster).
describe.skipIf(skipRedis).each<ClientKind>(['node-redis-cluster', 'ioredis-cluster'])('redisTokenStore on %s without SPUBLISH', (kind) => {
  const fleet: ClusterFleet = useClusterFleet(kind, ['--rename-command', 'SPUBLISH', '']);

  it('one acquisition for the fleet, and forget() in one engine still reaches every other (classic pub/sub)', async () => {
    const members = [await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 }), await fleet.member({ commandTimeoutMs: 2_000 })];
    const [a, b, c] = members as [Member, Member, Member];
    expect((await Promise.all(members.flatMap((m) => [m.call('alice'), m.call('alice')]))).every((s) => s === 200)).toBe(true);
    expect(fleet.stack.idp.counters.exchange).toBe(1);
    await a.xaa.forget('alice');
    await eventually(() => signedOut(b, 'alice') && signedOut(c, 'alice'), 'the sign-out to reach the other engines');
    expect(members.flatMap((m) => m.diagnostics())).toEqual([]);
  });
});

describe('which client, and a prefix that keeps one user\'s keys in one slot', () => {
  const encryptionKeys = [randomBytes(32)];
  const nodeRedis = { isReady: false, sendCommand: async () => null };

  it('a prefix whose braces would split a user\'s keys over slots is a ConfigurationError; a {tag} prefix or none is not', () => {
    for (const prefix of ['a{}:', '{}']) {
      expect(() => redisTokenStore({ client: nodeRedis, prefix, encryptionKeys })).toThrow(expect.objectContaining({ code: 'invalid_option', option: 'prefix' }));
    }
    for (const prefix of ['xaa:', '{xaa}:', 'a}b:', 'a{b:']) expect(() => redisTokenStore({ client: nodeRedis, prefix, encryptionKeys })).not.toThrow();
  });

  it('anything but a node-redis or ioredis client is a ConfigurationError naming client', () => {
    for (const client of [undefined, {}, { call: () => null }, { get: async () => null }]) {
      expect(() => redisTokenStore({ client: client as never, encryptionKeys })).toThrow(expect.objectContaining({ option: 'client' }));
    }
  });
});
