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
  isolated: UndiciIsolated;
}

/** One comparison without the network: CPU per call, composed against bare, paired per round. */
export interface IsolatedPair {
  /** Median CPU per call, µs. */
  oursUs: number;
  bareUs: number;
  /** Median and IQR of the per-round differences (ours − bare), µs: the own cost. */
  overheadUs: number;
  overheadIqr: [number, number];
}

export interface UndiciIsolated {
  calls: number;
  rounds: number;
  /** A URL inside the resource, token cached: the warm path. */
  inside: IsolatedPair;
  /** A URL outside the resource on the same origin: passed through. */
  outside: IsolatedPair;
  /**
   * A composed interceptor that does nothing (`(dispatch) => dispatch`): what undici's composition
   * costs an interceptor on the new handler API (it wraps `undici.request`'s handler for that API and
   * unwraps it again beneath, converting the headers both ways). Ours relays such a handler in the
   * core's API instead, so the figures above pay only compose's wrapper, not this.
   */
  composition: IsolatedPair;
  impliedRatio: number;
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


/**
 * The interceptor's own cost without the network, the way undici's own interceptors are measured:
 * `undici.request` on a `MockAgent` answering at once, composed against the same MockAgent alone
 * sending the same `Authorization`. Each block runs on a fresh MockAgent (a MockAgent keeps memory
 * per call, which would otherwise tax whichever contender runs later; a forced GC between blocks
 * would cost more than what is measured); rounds alternate the order; the own cost is the median of
 * the per-round differences.
 */
async function measureIsolated(
  xaa: CrossAppAccess,
  session: { user: string; idToken: () => Promise<string> },
  resource: string,
  body: string,
  authed: Record<string, string>,
  bareHttpUs: number,
): Promise<UndiciIsolated> {
  const url = new URL(resource);
  const outside = `${url.origin}/elsewhere`;
  const json = { 'content-type': 'application/json' };
  const interceptor = crossAppAccessInterceptor(xaa, session);
  const nothing: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => dispatch(opts, handler);
  type Contender = { compose?: Dispatcher.DispatcherComposeInterceptor; url: string; headers: Record<string, string> };
  const pairs: Record<'inside' | 'outside' | 'composition', [Contender, Contender]> = {
    inside: [{ compose: interceptor, url: resource, headers: json }, { url: resource, headers: authed }],
    outside: [{ compose: interceptor, url: outside, headers: authed }, { url: outside, headers: authed }],
    composition: [{ compose: nothing, url: resource, headers: authed }, { url: resource, headers: authed }],
  };
  const calls = 4_000;
  const rounds = 24;
  const run = async (c: Contender): Promise<number> => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock.get(url.origin).intercept({ path: () => true, method: 'POST' }).reply(200, 'ok').persist();
    const dispatcher = c.compose ? mock.compose(c.compose) : mock;
    const call = async () => {
      const response = await request(c.url, { method: 'POST', body, headers: c.headers, dispatcher });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
    };
    try {
      return await cpuPerCall(call, calls);
    } finally {
      await mock.close();
    }
  };
  const samples = Object.fromEntries(Object.keys(pairs).map((k) => [k, { ours: [] as number[], bare: [] as number[], diff: [] as number[] }])) as Record<keyof typeof pairs, { ours: number[]; bare: number[]; diff: number[] }>;
  for (let r = 0; r < rounds; r++) {
    for (const key of Object.keys(pairs) as Array<keyof typeof pairs>) {
      const [ours, bare] = pairs[key];
      let o: number;
      let b: number;
      if (r % 2 === 0) {
        o = await run(ours);
        b = await run(bare);
      } else {
        b = await run(bare);
        o = await run(ours);
      }
      samples[key].ours.push(o);
      samples[key].bare.push(b);
      samples[key].diff.push(o - b);
    }
  }
  const pair = (key: keyof typeof pairs): IsolatedPair => ({
    oursUs: round(median(samples[key].ours), 2),
    bareUs: round(median(samples[key].bare), 2),
    overheadUs: round(median(samples[key].diff), 2),
    overheadIqr: [round(percentile(samples[key].diff, 25), 2), round(percentile(samples[key].diff, 75), 2)],
  });
  const inside = pair('inside');
  return {
    calls,
    rounds,
    inside,
    outside: pair('outside'),
    composition: pair('composition'),
    impliedRatio: round(bareHttpUs / (bareHttpUs + Math.max(0, inside.overheadUs)), 3),
  };
}
