/**
 * A soak of a fleet: 3 Node processes (test/fixtures/soak-member.ts) sharing tokens through a real
 * `redis-server`, 400 users × 3 protected resources, while the authorization server revokes a
 * random user's tokens four times a second and Redis is killed and started again once. Every
 * request must be answered 200 (a revocation must never reach a caller as a 401), each request is
 * sent at most 3 times, and acquisitions stay within what the revocations and the outage allow.
 *
 * The resources are the minimal loopback server of test/helpers/resource-server.ts (tokens verified
 * by the real authorization server): the MCP SDK server is too slow for tens of thousands of calls.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useFleetProcesses } from './helpers/fleet-process.js';
import { mulberry32 } from './helpers/prng.js';
import { useRedisFleet } from './helpers/redis-fleet.js';
import { startResourceServer, type ResourceServer } from './helpers/resource-server.js';
import { skipRedis } from './servers/redis-server.js';

const script = fileURLToPath(new URL('./fixtures/soak-member.ts', import.meta.url));
const PROCESSES = 3;
const USERS = 400;
const RESOURCES = 3;
const REQUESTS_PER_PROCESS = 6_000;
const CONCURRENCY = 24;
const REVOCATIONS_PER_SECOND = 4;
const SEED = 0x50a4;

interface Outcome {
  statuses: Record<string, number>;
  errors: string[];
  errorCount: number;
  /** Requests answered other than 200. */
  refused: string[];
  events: Record<string, number>;
  acquiredAlone: number;
  diagnostics: string[];
}

const fleet = useRedisFleet();
const start = useFleetProcesses();

describe.skipIf(skipRedis)('a fleet soak with revocations and a Redis restart', () => {
  it(`${PROCESSES} processes × ${REQUESTS_PER_PROCESS} requests, ${USERS} users × ${RESOURCES} resources, ${REVOCATIONS_PER_SECOND} revocations a second, Redis killed and restarted: every request answered 200, each sent at most 3 times, acquisitions bounded`, async () => {
    const { stack, redis } = fleet;
    const servers: ResourceServer[] = [];
    for (let i = 0; i < RESOURCES; i++) servers.push(await startResourceServer(stack.as));
    fleet.onCleanup(() => Promise.all(servers.map((s) => s.close())));
    stack.as.allowedResources = servers.map((s) => s.resource);
    const issued: string[] = [];
    const issuedAt = new Map<string, number>();
    const revokedAt = new Map<string, number>();
    stack.as.accessTokenFormat = (random) => (issued.push(random), issuedAt.set(random, Date.now()), random);

    const users = Array.from({ length: USERS }, (_, i) => `user-${i}`);
    const idTokens = Object.fromEntries(await Promise.all(users.map(async (user) => [user, await stack.idp.mintIdToken({ sub: user, expiresInSeconds: 3600 })])));
    const dir = mkdtempSync(join(tmpdir(), 'xaa-soak-'));
    fleet.onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const tokensFile = join(dir, 'id-tokens.json');
    writeFileSync(tokensFile, JSON.stringify(idTokens));

    const key = randomBytes(32).toString('base64');
    const args = [redis.url, stack.idp.issuer, stack.idp.clientId, stack.as.issuer, key, tokensFile, ...servers.map((s) => s.resource)];
    const members = await Promise.all(Array.from({ length: PROCESSES }, () => start(script, args)));

    // The authorization server revokes a random user's live tokens, every resource's, 4 times a second;
    // once a third of the requests are answered Redis is killed, and started again a tick later.
    const total = PROCESSES * REQUESTS_PER_PROCESS;
    const answered = () => servers.reduce((sum, s) => sum + s.received.length, 0);
    const random = mulberry32(SEED);
    // Each user is revoked at most once: a user revoked again between a request's fresh token and
    // its retry could not be served within the request's budget, whatever the engine did.
    const victims = [...users].sort(() => random() - 0.5);
    let revocations = 0;
    let revokedTokens = 0;
    let outage: 'before' | 'down' | 'restarting' | 'after' = 'before';
    const revoking = setInterval(() => {
      const user = victims[revocations++];
      if (user === undefined) return;
      for (const token of issued) {
        if (stack.as.verifyAccessToken(token)?.sub !== user) continue;
        stack.as.revoke(token);
        revokedAt.set(token, Date.now());
        revokedTokens++;
      }
      if (outage === 'before' && answered() >= total / 3) {
        outage = 'down';
        void redis.kill();
      } else if (outage === 'down') {
        outage = 'restarting';
        void redis.start().then(() => (outage = 'after'));
      }
    }, 1000 / REVOCATIONS_PER_SECOND);
    let outcomes: Outcome[];
    try {
      outcomes = await Promise.all(members.map((m, i) => m.ask<Outcome>(`go ${REQUESTS_PER_PROCESS} ${CONCURRENCY} ${SEED + i}`)));
    } finally {
      clearInterval(revoking);
    }
    await Promise.all(members.map((m) => m.exit()));

    // The run did what it is meant to.
    expect(outage).toBe('after');
    expect(revocations).toBeGreaterThanOrEqual(20);
    expect(revokedTokens).toBeGreaterThanOrEqual(20);
    const diagnostics = outcomes.flatMap((o) => o.diagnostics);
    expect(diagnostics.filter((m) => m.startsWith('Redis failed')).length).toBeGreaterThanOrEqual(1);
    expect(diagnostics.filter((m) => m.startsWith('Redis answers again')).length).toBeGreaterThanOrEqual(1);

    // Every request answered 200: no revocation reached a caller. (For one that did: each token it was
    // sent with, when it was issued and revoked, in ms from the start.)
    const t0 = Math.min(...issuedAt.values());
    const since = (at: Map<string, number>, token: string | undefined) => (token && at.has(token) ? at.get(token)! - t0 : undefined);
    const refused = outcomes.flatMap((o) => o.refused).map((id) => ({
      id,
      sent: servers.flatMap((s) => s.received.filter((r) => r.bytes.toString() === id).map((r) => r.authorization?.slice('Bearer '.length))).map((token) => ({ issued: since(issuedAt, token), revoked: since(revokedAt, token) })),
    }));
    expect(refused).toEqual([]);
    expect(outcomes.map((o) => o.errors)).toEqual(outcomes.map(() => []));
    expect(outcomes.map((o) => o.statuses)).toEqual(outcomes.map(() => ({ 200: REQUESTS_PER_PROCESS })));

    // Each request sent at most 3 times (the request's budget), the probes included.
    const sends = new Map<string, number>();
    // (The engines' metadata GETs for the resource's scopes, with no body, are not requests.)
    for (const s of servers) for (const r of s.received) if (r.bytes.length > 0) sends.set(r.bytes.toString(), (sends.get(r.bytes.toString()) ?? 0) + 1);
    expect(sends.size).toBe(total);
    expect(Math.max(...sends.values())).toBeLessThanOrEqual(3);

    // Acquisitions: with Redis up, one per (user, resource), one more each after Redis came back empty,
    // and one per revoked token, for the whole fleet; while a process went without Redis, what it
    // acquired on its own. Not one per process for each.
    const needed = 2 * USERS * RESOURCES + revokedTokens;
    const acquisitions = outcomes.reduce((sum, o) => sum + (o.events.token_issued ?? 0) + (o.events.token_renewed ?? 0), 0);
    const alone = outcomes.reduce((sum, o) => sum + o.acquiredAlone, 0);
    expect(acquisitions).toBe(stack.as.counters.grant);
    expect(acquisitions - alone).toBeLessThanOrEqual(needed);
    expect(acquisitions).toBeLessThan(PROCESSES * (USERS * RESOURCES + revokedTokens));
  }, 120_000);
});
