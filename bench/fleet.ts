/**
 * A fleet on Redis (issue 19): P Node processes (bench/fleet-member.ts), each one engine with
 * `redisTokenStore` on its own client, U users × S servers, no `resource` configured (each server
 * learned from its 401), against one real `redis-server` started here on a free port (stopped at the
 * end, also on failure) and the loopback IdP and authorization server. The servers are minimal
 * protected resources (test/helpers/resource-server.ts, with RFC 9728 metadata): the MCP SDK server
 * is too slow for tens of thousands of calls.
 *
 * - Cold: every process calls every (user, server) once, in the same order, concurrently: token
 *   exchanges at the IdP and grants at the AS (target: one per (user, server) for the whole fleet).
 * - Warm: every process calls every (user, server) again, R times: Redis commands per request, from
 *   the server's own `INFO commandstats` (every command from every client; the INFO calls excluded).
 * - A fresh replica (one more process, started after) makes one call: the requests it sends (target:
 *   the call alone; no probe, no metadata, no token request).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { startLineProcess, type LineProcess } from '../test/helpers/line-process.js';
import { startResourceServer, type ResourceServer } from '../test/helpers/resource-server.js';
import { redisAvailable, startRedisServer, type RedisServer } from '../test/servers/redis-server.js';
import { DEFAULT_AS_CLIENT } from '../test/servers/stack.js';
import type { Stack } from './contenders.js';
import { round } from './stats.js';

export interface FleetOptions {
  processes: number;
  users: number;
  servers: number;
  /** Calls in flight per process. */
  concurrency: number;
  warmRounds: number;
  /** The stores' `commandTimeoutMs`. */
  commandTimeoutMs: number;
}

/** What one process answered to `all`. */
interface AllOutcome {
  requests: number;
  statuses: Record<string, number>;
  ms: number;
  issued: number;
  shared: number;
  diagnostics: string[];
}

export type FleetResult =
  | { skipped: string }
  | {
      skipped?: undefined;
      redisVersion: string;
      options: FleetOptions;
      cold: { requests: number; failed: number; exchanges: number; grants: number; target: number; issued: number; shared: number; wallMs: number };
      warm: { requests: number; failed: number; redisCommands: number; commandsPerRequest: number; acquisitions: number; wallMs: number; requestsPerSecond: number };
      replica: { calls: number; metadata: number; tokenRequests: number; discoveryEvents: number; status: number; serverRequests: number; redisCommands: number };
      diagnostics: string[];
    };

const MEMBER = fileURLToPath(new URL('./fleet-member.ts', import.meta.url));

/** Every command the server ran, from `INFO commandstats` (the INFO calls themselves left out). */
async function commandsRun(client: ReturnType<typeof createClient>): Promise<number> {
  const info = String(await client.sendCommand(['INFO', 'commandstats']));
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (match[1] !== 'info') total += Number(match[2]);
  return total;
}

export async function measureFleet(stack: Stack, options: FleetOptions): Promise<FleetResult> {
  if (!redisAvailable) return { skipped: '`redis-server` is not on PATH on this machine, so the fleet section was not run (apt-get install -y redis-server).' };
  let redis: RedisServer | undefined;
  const members: LineProcess[] = [];
  const killAll = () => {
    void redis?.kill();
    for (const m of members) m.child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const servers: ResourceServer[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'xaa-fleet-bench-'));
  let admin: ReturnType<typeof createClient> | undefined;
  try {
    redis = await startRedisServer();
    admin = createClient({ url: redis.url });
    admin.on('error', () => {});
    await admin.connect();
    const redisVersion = String(String(await admin.sendCommand(['INFO', 'server'])).match(/redis_version:(\S+)/)?.[1] ?? 'unknown');
    for (let i = 0; i < options.servers; i++) servers.push(await startResourceServer(stack.as, { metadata: true }));
    stack.as.allowedResources = [...(stack.as.allowedResources ?? []), ...servers.map((s) => s.resource)];
    const users = Array.from({ length: options.users }, (_, i) => `user-${i}@example.com`);
    const idTokens = Object.fromEntries(await Promise.all(users.map(async (user) => [user, await stack.idp.mintIdToken({ sub: user, expiresInSeconds: 3600 })])));
    const tokensFile = join(dir, 'id-tokens.json');
    writeFileSync(tokensFile, JSON.stringify(idTokens));
    const args = [redis.url, stack.idp.issuer, stack.idp.clientId, stack.as.issuer, DEFAULT_AS_CLIENT.clientId, DEFAULT_AS_CLIENT.clientSecret!, randomBytes(32).toString('base64'), String(options.commandTimeoutMs), tokensFile, ...servers.map((s) => s.resource)];
    const start = async () => {
      const member = await startLineProcess(MEMBER, args);
      members.push(member);
      return member;
    };
    const fleet = await Promise.all(Array.from({ length: options.processes }, start));
    const received = () => servers.reduce((sum, s) => sum + s.received.length, 0);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
    const failedOf = (outcomes: AllOutcome[]) => outcomes.reduce((sum, o) => sum + o.requests - (o.statuses['200'] ?? 0), 0);
    const diagnostics = new Set<string>();

    // Cold.
    const before = { exchanges: stack.idp.counters.exchange, grants: stack.as.counters.grant };
    let started = performance.now();
    const cold = await Promise.all(fleet.map((m) => m.ask<AllOutcome>(`all 1 ${options.concurrency}`)));
    const coldMs = performance.now() - started;
    cold.forEach((o) => o.diagnostics.forEach((d) => diagnostics.add(d)));
    await settle();

    // Warm.
    const commandsBefore = await commandsRun(admin);
    const exchangesBefore = stack.idp.counters.exchange;
    started = performance.now();
    const warm = await Promise.all(fleet.map((m) => m.ask<AllOutcome>(`all ${options.warmRounds} ${options.concurrency}`)));
    const warmMs = performance.now() - started;
    await settle();
    const warmCommands = (await commandsRun(admin)) - commandsBefore;
    warm.forEach((o) => o.diagnostics.forEach((d) => diagnostics.add(d)));
    const warmRequests = warm.reduce((sum, o) => sum + o.requests, 0);

    // A fresh replica's first call.
    const replica = await start();
    const replicaBefore = { received: received(), metadata: stack.idp.counters.metadata + stack.as.counters.metadata, exchanges: stack.idp.counters.exchange, grants: stack.as.counters.grant, commands: await commandsRun(admin) };
    const one = await replica.ask<{ status: number; calls: number; metadata: number; token: number; discovery: number }>(`one ${users[0]} 0`);
    await settle();
    const serverRequests = received() - replicaBefore.received + (stack.idp.counters.metadata + stack.as.counters.metadata - replicaBefore.metadata) + (stack.idp.counters.exchange - replicaBefore.exchanges) + (stack.as.counters.grant - replicaBefore.grants);
    const replicaCommands = (await commandsRun(admin)) - replicaBefore.commands;

    await Promise.all(members.map((m) => m.exit()));
    return {
      redisVersion,
      options,
      cold: {
        requests: cold.reduce((sum, o) => sum + o.requests, 0),
        failed: failedOf(cold),
        exchanges: stack.idp.counters.exchange - before.exchanges,
        grants: stack.as.counters.grant - before.grants,
        target: options.users * options.servers,
        issued: cold.reduce((sum, o) => sum + o.issued, 0),
        shared: cold.reduce((sum, o) => sum + o.shared, 0),
        wallMs: Math.round(coldMs),
      },
      warm: {
        requests: warmRequests,
        failed: failedOf(warm),
        redisCommands: warmCommands,
        commandsPerRequest: round(warmCommands / warmRequests, 4),
        acquisitions: stack.idp.counters.exchange - exchangesBefore,
        wallMs: Math.round(warmMs),
        requestsPerSecond: Math.round(warmRequests / (warmMs / 1000)),
      },
      replica: { calls: one.calls, metadata: one.metadata, tokenRequests: one.token, discoveryEvents: one.discovery, status: one.status, serverRequests, redisCommands: replicaCommands },
      diagnostics: [...diagnostics],
    };
  } finally {
    for (const m of members) m.child.kill('SIGKILL');
    admin?.destroy();
    await Promise.all(servers.map((s) => s.close()));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
    process.removeListener('exit', killAll);
  }
}

/** The section of BENCHMARKS.md. */
export function fleetSection(f: FleetResult, otel: string): string {
  if (f.skipped !== undefined) return `## 9. A fleet on Redis\n\n**Skipped:** ${f.skipped}\n\n${otel}`;
  const o = f.options;
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  return [
    `## 9. A fleet on Redis (${o.processes} processes × ${o.users.toLocaleString('en-US')} users × ${o.servers} servers, redis-server ${f.redisVersion} on loopback)`,
    '',
    `Each process is one engine with \`redisTokenStore\` on its own node-redis client (\`commandTimeoutMs\` ${o.commandTimeoutMs}, \`max\` ${(o.users * o.servers * 2).toLocaleString('en-US')}), no \`resource\` configured: each server is learned from its 401. ${o.concurrency} calls in flight per process; every process goes through the (user, server) pairs in the same order.`,
    '',
    '| Measure | Target | Result | |',
    '|---|---|---|---|',
    `| Acquisitions, cold (${f.cold.requests.toLocaleString('en-US')} calls in ${(f.cold.wallMs / 1000).toFixed(1)} s; token exchanges / grants) | ${f.cold.target.toLocaleString('en-US')} (one per (user, server)) | **${f.cold.exchanges.toLocaleString('en-US')} / ${f.cold.grants.toLocaleString('en-US')}** (${f.cold.shared.toLocaleString('en-US')} taken from Redis; ${f.cold.failed} failed) | ${met(f.cold.exchanges === f.cold.target && f.cold.grants === f.cold.target && f.cold.failed === 0)} |`,
    `| Redis commands per warm request (${f.warm.requests.toLocaleString('en-US')} requests, ${f.warm.requestsPerSecond.toLocaleString('en-US')}/s over the fleet) | 0 | **${f.warm.commandsPerRequest}** (${f.warm.redisCommands} commands; ${f.warm.acquisitions} acquisitions; ${f.warm.failed} failed) | ${met(f.warm.redisCommands === 0)} |`,
    `| A fresh replica's first call: requests it sent (to the server, where a probe would be a second / metadata / token) | 1 (the call), no discovery | **${f.replica.calls + f.replica.metadata + f.replica.tokenRequests}** (${f.replica.calls} / ${f.replica.metadata} / ${f.replica.tokenRequests}; ${f.replica.discoveryEvents} \`discovery\` events; the servers saw ${f.replica.serverRequests}; HTTP ${f.replica.status}; ${f.replica.redisCommands} Redis commands) | ${met(f.replica.calls === 1 && f.replica.metadata === 0 && f.replica.tokenRequests === 0 && f.replica.status === 200)} |`,
    '',
    f.diagnostics.length === 0 ? 'The stores emitted no `diagnostic` event (Redis never timed out or failed) during the section.' : `Diagnostics from the stores: ${f.diagnostics.map((d) => `"${d}"`).join('; ')}.`,
    '',
    otel,
  ].join('\n');
}
