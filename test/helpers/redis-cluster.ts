/**
 * A real 3-master Redis Cluster on free loopback ports, for the tests (and the bench) of
 * `cross-app-access/redis` on a cluster: three `redis-server --cluster-enabled yes` (no persistence,
 * their cluster files in a temporary directory), joined by `redis-cli --cluster create`, ready once
 * every node reports `cluster_state:ok`. Stopped by PID (SIGKILL), also when starting fails and when
 * the test process exits; `kill(i)` kills one master mid-run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from '../servers/redis-server.js';

const run = promisify(execFile);

export interface ClusterNode {
  readonly port: number;
  readonly url: string;
  readonly pid: number | undefined;
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  /** `{ url }` of every node, for node-redis's `createCluster({ rootNodes })`. */
  readonly rootNodes: Array<{ url: string }>;
  /** `{ host, port }` of every node, for ioredis's `new Cluster(...)`. */
  readonly startupNodes: Array<{ host: string; port: number }>;
  /** SIGKILL to one master: it dies as in a crash (its slots are then served by nobody). */
  kill(index: number): Promise<void>;
  /** Every node's PID killed, the temporary directory removed. */
  stop(): Promise<void>;
}

/** Lets a lost node be noticed within a second, not the default 15 (a killed master mid-test). */
const NODE_TIMEOUT_MS = 1_000;

/** Tries to start a cluster this many times: a free port can be taken by a parallel test before a node binds it. */
const START_ATTEMPTS = 3;

/** `serverArgs` go to every node (e.g. `['--rename-command', 'SPUBLISH', '']`: a server without sharded pub/sub). */
export async function startRedisCluster(masters = 3, serverArgs: string[] = []): Promise<RedisCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(masters, serverArgs);
    } catch (error) {
      if (attempt >= START_ATTEMPTS) throw error;
    }
  }
}

async function startOnce(masters: number, serverArgs: string[]): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'xaa-cluster-'));
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // Also when the test process ends without stop() (a crash, a timeout).
  process.once('exit', killAll);
  const stop = async () => {
    await Promise.all(children.map((child) => exited(child, () => child.kill('SIGKILL'))));
    process.removeListener('exit', killAll);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      // The cluster bus defaults to port + 10000, which may be taken or past 65535: a free one of its own.
      const busPort = await freePort();
      ports.push(port);
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--dir', dir, '--save', '', '--appendonly', 'no', ...serverArgs],
        { stdio: 'ignore' },
      );
      children.push(child);
    }
    // A node that exited (its port was taken meanwhile) fails this attempt at once, as does a PONG
    // from another process on its port (the cluster then cannot form).
    for (const [i, port] of ports.entries()) {
      await until(async () => {
        const child = children[i]!;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Redis Cluster: node ${port} exited at start`);
        return (await cli(port, 'PING')) === 'PONG';
      }, `node ${port} to answer PING`);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const port of ports) await until(async () => (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), `node ${port} to report cluster_state:ok`);
    const nodes = ports.map((port, i) => ({ port, url: `redis://127.0.0.1:${port}`, pid: children[i]!.pid }));
    return {
      nodes,
      rootNodes: nodes.map(({ url }) => ({ url })),
      startupNodes: nodes.map(({ port }) => ({ host: '127.0.0.1', port })),
      kill: async (index) => {
        const child = children[index]!;
        await exited(child, () => child.kill('SIGKILL'));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Runs `redis-cli -p port …`; its trimmed output, or '' if it failed. */
async function cli(port: number, ...args: string[]): Promise<string> {
  try {
    return (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5_000 })).stdout.trim();
  } catch {
    return '';
  }
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Redis Cluster: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs `kill` and resolves once `child` has exited (at once if it already had). */
function exited(child: ChildProcess, kill: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  kill();
  return done;
}

/**
 * Moves the slot of `key` to another master, as a resharding does (CLUSTER SETSLOT IMPORTING /
 * MIGRATING, MIGRATE of its keys, SETSLOT NODE on every master): clients meet MOVED and ASK, and
 * the old owner unsubscribes the slot's sharded-channel subscribers. Resolves with the ports the
 * slot moved from and to.
 */
export async function moveSlotOf(cluster: RedisCluster, key: string): Promise<{ from: number; to: number }> {
  const first = cluster.nodes[0]!.port;
  const slot = Number(await cli(first, 'CLUSTER', 'KEYSLOT', key));
  const masters = (await cli(first, 'CLUSTER', 'NODES'))
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2]!.includes('master') && !f[2]!.includes('fail'))
    .map((f) => ({ id: f[0]!, port: Number(f[1]!.split(':')[1]!.split('@')[0]), ranges: f.slice(8) }));
  const owns = (ranges: string[]) => ranges.some((r) => {
    const [lo, hi = lo] = r.split('-').map(Number);
    return slot >= lo! && slot <= hi!;
  });
  const source = masters.find((m) => owns(m.ranges))!;
  const target = masters.find((m) => m !== source)!;
  await cli(target.port, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
  await cli(source.port, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id);
  for (;;) {
    const keys = (await cli(source.port, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100')).split('\n').filter(Boolean);
    if (keys.length === 0) break;
    await cli(source.port, 'MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'REPLACE', 'KEYS', ...keys);
  }
  for (const m of [target, source, ...masters.filter((m) => m !== source && m !== target)]) await cli(m.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
  return { from: source.port, to: target.port };
}

/** How many connections the node at `port` has subscribed to the sharded `channel` (PUBSUB SHARDNUMSUB). */
export async function shardSubscribersAt(port: number, channel: string): Promise<number> {
  return Number((await cli(port, 'PUBSUB', 'SHARDNUMSUB', channel)).split('\n')[1] ?? 0);
}

/** Every key matching `pattern` on every master that answers (KEYS: a test's few keys). */
export async function keysMatching(cluster: RedisCluster, pattern: string): Promise<string[]> {
  const found = await Promise.all(cluster.nodes.map(async (node) => (await cli(node.port, 'KEYS', pattern)).split('\n').filter(Boolean)));
  return found.flat();
}
