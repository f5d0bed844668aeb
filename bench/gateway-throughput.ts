/**
 * Gateway throughput: requests/s through one `CrossAppAccess` engine whose fetch resolves the user
 * per request from AsyncLocalStorage, with 1,000 users each holding a cached token, against bare
 * `fetch` sending a fixed `Authorization` header, to the same keep-alive target server in a child
 * process (it answers 200 `ok`). Both run in interleaved slices with 32 requests in flight; each
 * request's latency is recorded for the medians and the 99th percentiles.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CrossAppAccess } from 'cross-app-access';
import type { Stack } from './contenders.js';
import { median, percentile, round } from './stats.js';
import { startWarmServer } from './warm.js';

export interface ThroughputSide {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface GatewayThroughputResult {
  users: number;
  concurrency: number;
  slices: number;
  sliceMs: number;
  ours: ThroughputSide;
  bare: ThroughputSide;
  /** ours / bare, requests per second. */
  ratio: number;
  /** Acquisitions made to fill the 1,000 users' tokens, and during the measurement (0 expected). */
  acquisitionsToFill: number;
  acquisitionsDuring: number;
}

type Send = (user: string) => Promise<Response>;

async function slice(send: Send, users: string[], concurrency: number, ms: number, latencies: number[]): Promise<{ count: number; errors: number; seconds: number }> {
  let count = 0;
  let errors = 0;
  let n = 0;
  const started = performance.now();
  const end = started + ms;
  const loop = async () => {
    while (performance.now() < end) {
      const user = users[n++ % users.length]!;
      const t = performance.now();
      try {
        const response = await send(user);
        await response.arrayBuffer();
        if (response.status !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { count, errors, seconds: (performance.now() - started) / 1000 };
}

export async function measureGatewayThroughput(stack: Stack, settings: { users: number; concurrency: number; slices: number; sliceMs: number }): Promise<GatewayThroughputResult> {
  const target = await startWarmServer();
  const resource = `${target.origin}/mcp`;
  const allowed = stack.as.allowedResources;
  stack.as.allowedResources = [...(allowed ?? []), resource];
  try {
    const context = new AsyncLocalStorage<string>();
    let acquisitions = 0;
    const xaa = new CrossAppAccess({
      idp: { tokenEndpoint: stack.idp.tokenEndpoint, clientId: stack.idp.clientId },
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
      resource,
      scope: 'bench',
      maxCachedTokens: settings.users * 2,
      onEvent: (event) => {
        if (event.type === 'token_issued' || event.type === 'token_renewed') acquisitions++;
      },
    });
    const idToken = ({ user }: { user?: string }) => stack.idp.mintIdToken({ sub: user });
    const gatewayFetch = xaa.fetch(fetch, { user: () => context.getStore(), idToken });
    const users = Array.from({ length: settings.users }, (_, i) => `gw-${i}`);
    // Fill: every user's token, 50 at a time.
    for (let i = 0; i < users.length; i += 50) await Promise.all(users.slice(i, i + 50).map((user) => xaa.getAccessToken({ user, idToken, url: resource })));
    const acquisitionsToFill = acquisitions;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const authorization = `Bearer ${(await xaa.getAccessToken({ user: users[0]!, idToken, url: resource })).token}`;
    const ours: Send = (user) => context.run(user, () => gatewayFetch(resource, { method: 'POST', headers, body }));
    const bare: Send = () => fetch(resource, { method: 'POST', headers: { ...headers, authorization }, body });
    const sides = { ours: { count: 0, errors: 0, seconds: 0, latencies: [] as number[] }, bare: { count: 0, errors: 0, seconds: 0, latencies: [] as number[] } };
    await slice(ours, users, settings.concurrency, 300, []); // warm-up
    await slice(bare, users, settings.concurrency, 300, []);
    for (let s = 0; s < settings.slices; s++) {
      const order: Array<'ours' | 'bare'> = s % 2 === 0 ? ['ours', 'bare'] : ['bare', 'ours'];
      for (const name of order) {
        const side = sides[name];
        const r = await slice(name === 'ours' ? ours : bare, users, settings.concurrency, settings.sliceMs, side.latencies);
        side.count += r.count;
        side.errors += r.errors;
        side.seconds += r.seconds;
      }
    }
    const summary = (side: (typeof sides)['ours']): ThroughputSide => ({
      requestsPerSecond: round(side.count / side.seconds, 0),
      p50Ms: round(median(side.latencies), 3),
      p99Ms: round(percentile(side.latencies, 99), 3),
      errors: side.errors,
    });
    const o = summary(sides.ours);
    const b = summary(sides.bare);
    return {
      users: settings.users,
      concurrency: settings.concurrency,
      slices: settings.slices,
      sliceMs: settings.sliceMs,
      ours: o,
      bare: b,
      ratio: round(o.requestsPerSecond / b.requestsPerSecond, 3),
      acquisitionsToFill,
      acquisitionsDuring: acquisitions - acquisitionsToFill,
    };
  } finally {
    stack.as.allowedResources = allowed;
    await target.close();
  }
}
