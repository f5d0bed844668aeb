/**
 * Warm path of the undici interceptor (issue 10): requests/s and client CPU per request through
 * `undici.request` on an Agent composed with `crossAppAccessInterceptor` (token cached), against
 * `undici.request` on a bare Agent sending the same `Authorization: Bearer` header; and, for
 * reference, the fetch wrapper (`xaa.fetch(fetch)`) against bare global `fetch` with that header.
 * Same target as the warm section (a keep-alive server in a child process answering 200 `ok`, so its
 * CPU is not charged to the client), same request, a fixed number in flight, all four contenders in
 * each round (forward, then reversed order), rounds repeated; ratios of the medians and per round.
 */
import { Agent, MockAgent, request, type Dispatcher } from 'undici';
import { CrossAppAccess } from 'cross-app-access';
import { crossAppAccessInterceptor } from 'cross-app-access/undici';
import type { Stack } from './contenders.js';
import { median, percentile, round } from './stats.js';
import { startWarmServer } from './warm.js';
import { cpuPerCall, slice } from './slice.js';

export interface UndiciOptions {
  concurrency: number;
  /** Rounds; each runs one slice of every contender. */
  rounds: number;
  sliceMs: number;
  warmupMs: number;
}

export type UndiciContender = 'interceptor' | 'bareAgent' | 'fetchWrapper' | 'bareFetch';

export interface UndiciRow {
  id: UndiciContender;
  /** Requests/s of each round's slice, in order. */
  slices: number[];
  medianRps: number;
  /** Wall time per request at this concurrency: concurrency / median req/s, µs. */
  usPerRequest: number;
  /** Client process CPU per request (user + system), median over slices, µs. */
  cpuUsPerRequest: number;
}

export interface UndiciRatio {
  /** Ratio of the median req/s. */
  ratio: number;
  /** Median and IQR of the per-round ratios. */
  pairedMedian: number;
  pairedIqr: [number, number];
  /** Denominator's CPU per request / numerator's. */
  cpuRatio: number;
}

export interface UndiciResult {
  concurrency: number;
  rounds: number;
  sliceMs: number;
  body: string;
  rows: UndiciRow[];
  /** interceptor / bare Agent: the figure issue 10 asks for. */
  interceptorVsAgent: UndiciRatio;
  /** fetch wrapper / bare fetch: the warm section's comparison, again in this run. */
  wrapperVsFetch: UndiciRatio;
  /** interceptor / fetch wrapper (req/s medians): undici.request is a lighter client than fetch. */
  interceptorVsWrapper: number;
  /** Acquisitions during the section (1 and 1 expected: one engine, one token, shared). */
  exchanges: number;
  grants: number;
  errors: number;
  /**
   * The interceptor's own cost without the network: CPU per `undici.request` on a `MockAgent` that
   * answers at once (persisted intercept), composed with the interceptor against the MockAgent alone
   * with the same header; alternating rounds, medians, µs. The implied ratio is for a real request
   * costing the bare Agent's CPU per request above.
   */
  isolated: { calls: number; rounds: number; interceptorUsPerCall: number; bareUsPerCall: number; overheadUs: number; impliedRatio: number };
}


function ratioOf(a: { rps: number[]; cpu: number[] }, b: { rps: number[]; cpu: number[] }): UndiciRatio {
  const pairs = a.rps.map((x, i) => x / b.rps[i]!);
  return {
    ratio: round(median(a.rps) / median(b.rps), 3),
    pairedMedian: round(median(pairs), 3),
    pairedIqr: [round(percentile(pairs, 25), 3), round(percentile(pairs, 75), 3)],
    cpuRatio: round(median(b.cpu) / median(a.cpu), 3),
  };
}

export async function measureUndici(stack: Stack, options: UndiciOptions): Promise<UndiciResult> {
  const server = await startWarmServer();
  const resource = `${server.origin}/undici`;
  stack.as.allowedResources = [...(stack.as.allowedResources ?? []), resource];
  const exchangesBefore = stack.idp.counters.exchange;
  const grantsBefore = stack.as.counters.grant;
  const xaa = new CrossAppAccess({
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
    resource,
  });
  const session = { user: 'bench-undici', idToken: () => stack.idp.mintIdToken({ sub: 'bench-undici' }) };
  const intercepted = new Agent().compose(crossAppAccessInterceptor(xaa, session));
  const bare = new Agent();
  const wrapped = xaa.fetch(fetch, session);
  try {
    // The one acquisition; the interceptor and the fetch wrapper share the engine, so its token.
    const { token } = await xaa.getAccessToken({ ...session, url: resource });
    if (!stack.as.verifyAccessToken(token)) throw new Error('undici: no valid token was acquired');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
    const json = { 'content-type': 'application/json' };
    const authed = { ...json, authorization: `Bearer ${token}` };
    const viaUndici = async (dispatcher: Dispatcher, headers: Record<string, string>) => {
      const response = await request(resource, { method: 'POST', body, headers, dispatcher });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
    };
    const viaFetch = async (f: typeof fetch, headers: Record<string, string>) => {
      const response = await f(resource, { method: 'POST', body, headers });
      await response.text();
      if (response.status !== 200) throw new Error(`status ${response.status}`);
    };
    const send: Record<UndiciContender, () => Promise<void>> = {
      interceptor: () => viaUndici(intercepted, json),
      bareAgent: () => viaUndici(bare, authed),
      fetchWrapper: () => viaFetch(wrapped as typeof fetch, json),
      bareFetch: () => viaFetch(fetch, authed),
    };
    const ids = Object.keys(send) as UndiciContender[];
    for (const id of ids) await slice(send[id], options.concurrency, options.warmupMs);
    const samples = Object.fromEntries(ids.map((id) => [id, { rps: [] as number[], cpu: [] as number[] }])) as Record<UndiciContender, { rps: number[]; cpu: number[] }>;
    let errors = 0;
    for (let r = 0; r < options.rounds; r++) {
      for (const id of r % 2 === 0 ? ids : [...ids].reverse()) {
        const s = await slice(send[id], options.concurrency, options.sliceMs);
        samples[id].rps.push(s.rps);
        samples[id].cpu.push(s.cpuUs);
        errors += s.errors;
      }
    }
    const rows: UndiciRow[] = ids.map((id) => {
      const rps = median(samples[id].rps);
      return {
        id,
        slices: samples[id].rps.map((x) => round(x, 0)),
        medianRps: round(rps, 0),
        usPerRequest: round((options.concurrency / rps) * 1e6, 1),
        cpuUsPerRequest: round(median(samples[id].cpu), 1),
      };
    });
    const isolated = await measureIsolated(xaa, session, resource, body, authed, median(samples.bareAgent.cpu));
    return {
      concurrency: options.concurrency,
      rounds: options.rounds,
      sliceMs: options.sliceMs,
      body: `POST, ${Buffer.byteLength(body)}-byte JSON string body, response read in full`,
      rows,
      interceptorVsAgent: ratioOf(samples.interceptor, samples.bareAgent),
      wrapperVsFetch: ratioOf(samples.fetchWrapper, samples.bareFetch),
      interceptorVsWrapper: round(median(samples.interceptor.rps) / median(samples.fetchWrapper.rps), 3),
      exchanges: stack.idp.counters.exchange - exchangesBefore,
      grants: stack.as.counters.grant - grantsBefore,
      errors,
      isolated,
    };
  } finally {
    await Promise.all([intercepted.close(), bare.close()]);
    await server.close();
  }
}


async function measureIsolated(
  xaa: CrossAppAccess,
  session: { user: string; idToken: () => Promise<string> },
  resource: string,
  body: string,
  authed: Record<string, string>,
  bareHttpUs: number,
): Promise<UndiciResult['isolated']> {
  const mock = new MockAgent();
  mock.disableNetConnect();
  const url = new URL(resource);
  mock.get(url.origin).intercept({ path: url.pathname, method: 'POST' }).reply(200, 'ok').persist();
  const composed = mock.compose(crossAppAccessInterceptor(xaa, session));
  const call = async (dispatcher: Dispatcher, headers: Record<string, string>) => {
    const response = await request(resource, { method: 'POST', body, headers, dispatcher });
    await response.body.text();
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
  };
  const json = { 'content-type': 'application/json' };
  const calls = 20_000;
  const rounds = 6;
  const ours: number[] = [];
  const bare: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const who of r % 2 === 0 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const)) {
        if (who === 'ours') ours.push(await cpuPerCall(() => call(composed, json), calls));
        else bare.push(await cpuPerCall(() => call(mock, authed), calls));
      }
    }
  } finally {
    await mock.close();
  }
  const overheadUs = Math.max(0, median(ours) - median(bare));
  return {
    calls,
    rounds,
    interceptorUsPerCall: round(median(ours), 2),
    bareUsPerCall: round(median(bare), 2),
    overheadUs: round(overheadUs, 2),
    impliedRatio: round(bareHttpUs / (bareHttpUs + overheadUs), 3),
  };
}
