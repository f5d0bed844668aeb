/**
 * Warm path of the undici interceptor (issue 10): requests/s and client CPU per request through
 * `undici.request` on an Agent composed with `crossAppAccessInterceptor` (token cached), against
 * `undici.request` on a bare Agent sending the same `Authorization: Bearer` header; and, for
 * reference, the fetch wrapper (`xaa.fetch(fetch)`) against bare global `fetch` with that header.
 * Same target as the warm section (a keep-alive server in a child process answering 200 `ok`, so its
 * CPU is not charged to the client), same request, a fixed number in flight, all four contenders in
 * each round (forward, then reversed order), rounds repeated; ratios of the medians and per round.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, MockAgent, request, type Dispatcher } from 'undici';
import { CrossAppAccess } from 'cross-app-access';
import { crossAppAccessInterceptor } from 'cross-app-access/undici';
import { startBenchStack, type Stack } from './contenders.js';
import { median, percentile, round } from './stats.js';
import { startWarmServer } from './warm.js';
import { bytesPerCall } from './allocations.js';
import { NoopDispatcher } from './noop-dispatcher.js';
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
  /** JS heap bytes allocated per call (no collection in the counted window), and ours − bare. */
  oursBytes: number;
  bareBytes: number;
  overheadBytes: number;
}

export interface UndiciIsolated {
  calls: number;
  rounds: number;
  /** An event-loop turn after every this many calls, as a client doing I/O has between requests. */
  turnEvery: number;
  /** On a `MockAgent` (the measurement, the one the targets refer to), a URL inside the resource, token cached: the warm path. */
  inside: IsolatedPair;
  /** On a `MockAgent`, a URL outside the resource on the same origin: passed through. */
  outside: IsolatedPair;
  /**
   * A composed interceptor that does nothing (`(dispatch) => dispatch`): what undici's composition
   * costs an interceptor on the new handler API (it wraps `undici.request`'s handler for that API and
   * unwraps it again beneath, converting the headers both ways). Ours relays such a handler in the
   * core's API instead, so the figures above pay only compose's wrapper, not this.
   */
  composition: IsolatedPair;
  /** The same two on the smallest real dispatcher (bench/noop-dispatcher.ts): no MockAgent work mixed in. */
  insideNoop: IsolatedPair;
  outsideNoop: IsolatedPair;
  /**
   * The MockAgent pairs measured the former way, every block's calls without an event-loop turn:
   * each request's objects then stay reachable (undici's body clean-up waits in `setImmediate`) until
   * the block ends, so they are all promoted and the figure is mostly the collector's.
   */
  insideNoTurn: IsolatedPair;
  outsideNoTurn: IsolatedPair;
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
    // In a fresh process, as the user-scaling section: what this figure measures is mostly allocation
    // and collection, which the heap earlier sections leave behind would tax (seen: the bare MockAgent
    // itself 16 µs per call here against 11 µs in a fresh process).
    const isolated = await measureIsolatedAlone(median(samples.bareAgent.cpu));
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
 * sending the same `Authorization`; and the same on {@link NoopDispatcher}, which does nothing but
 * answer. Each block runs on a fresh dispatcher (a MockAgent keeps memory per call, which would
 * otherwise tax whichever contender runs later; a forced GC between blocks would cost more than what
 * is measured); rounds alternate the order; the own cost is the median of the per-round differences.
 * The calls of a block are sequential, with an event-loop turn every `turnEvery` calls: without
 * one, nothing undici defers to `setImmediate` runs, every request's objects stay reachable until the
 * block ends and are promoted, and the figure measures the collector (kept as the `NoTurn` pairs).
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
  type Base = 'mock' | 'noop';
  type Contender = { compose?: Dispatcher.DispatcherComposeInterceptor; url: string; headers: Record<string, string> };
  type Pair = { base: Base; turns: boolean; ours: Contender; bare: Contender };
  const inside: [Contender, Contender] = [{ compose: interceptor, url: resource, headers: json }, { url: resource, headers: authed }];
  const outsideOnes: [Contender, Contender] = [{ compose: interceptor, url: outside, headers: authed }, { url: outside, headers: authed }];
  const pair = (base: Base, turns: boolean, [ours, bare]: [Contender, Contender]): Pair => ({ base, turns, ours, bare });
  const pairs = {
    inside: pair('mock', true, inside),
    outside: pair('mock', true, outsideOnes),
    composition: pair('mock', true, [{ compose: nothing, url: resource, headers: authed }, { url: resource, headers: authed }]),
    insideNoop: pair('noop', true, inside),
    outsideNoop: pair('noop', true, outsideOnes),
    insideNoTurn: pair('mock', false, inside),
    outsideNoTurn: pair('mock', false, outsideOnes),
  };
  type Key = keyof typeof pairs;
  const keys = Object.keys(pairs) as Key[];
  const calls = 4_000;
  const rounds = 24;
  const turnEvery = 16;
  const dispatcherFor = (base: Base): Dispatcher => {
    if (base === 'noop') return new NoopDispatcher();
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock.get(url.origin).intercept({ path: () => true, method: 'POST' }).reply(200, 'ok').persist();
    return mock;
  };
  const callOn = (dispatcher: Dispatcher, c: Contender) => async () => {
    const response = await request(c.url, { method: 'POST', body, headers: c.headers, dispatcher });
    await response.body.text();
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
  };
  const run = async (p: Pair, c: Contender): Promise<number> => {
    const d = dispatcherFor(p.base);
    try {
      return await cpuPerCall(callOn(c.compose ? d.compose(c.compose) : d, c), calls, p.turns ? turnEvery : 0);
    } finally {
      await d.close();
    }
  };
  const bytes = async (p: Pair, c: Contender): Promise<number> => {
    const d = dispatcherFor(p.base);
    try {
      return await bytesPerCall(callOn(c.compose ? d.compose(c.compose) : d, c));
    } finally {
      await d.close();
    }
  };
  const samples = Object.fromEntries(keys.map((k) => [k, { ours: [] as number[], bare: [] as number[], diff: [] as number[] }])) as Record<Key, { ours: number[]; bare: number[]; diff: number[] }>;
  for (let r = 0; r < rounds; r++) {
    for (const key of keys) {
      const p = pairs[key];
      let o: number;
      let b: number;
      if (r % 2 === 0) {
        o = await run(p, p.ours);
        b = await run(p, p.bare);
      } else {
        b = await run(p, p.bare);
        o = await run(p, p.ours);
      }
      samples[key].ours.push(o);
      samples[key].bare.push(b);
      samples[key].diff.push(o - b);
    }
  }
  // Bytes: the least of three passes over every contender, each pass after the others ran: a
  // function deoptimised and not yet optimised again in one pass allocates more than it does.
  const least = Object.fromEntries(keys.map((k) => [k, { ours: Infinity, bare: Infinity }])) as Record<Key, { ours: number; bare: number }>;
  for (let pass = 0; pass < 3; pass++) {
    for (const key of keys) {
      const p = pairs[key];
      least[key].ours = Math.min(least[key].ours, await bytes(p, p.ours));
      least[key].bare = Math.min(least[key].bare, await bytes(p, p.bare));
    }
  }
  const result = {} as Record<Key, IsolatedPair>;
  for (const key of keys) {
    const { ours: oursBytes, bare: bareBytes } = least[key];
    result[key] = {
      oursUs: round(median(samples[key].ours), 2),
      bareUs: round(median(samples[key].bare), 2),
      overheadUs: round(median(samples[key].diff), 2),
      overheadIqr: [round(percentile(samples[key].diff, 25), 2), round(percentile(samples[key].diff, 75), 2)],
      oursBytes: Math.round(oursBytes),
      bareBytes: Math.round(bareBytes),
      overheadBytes: Math.round(oursBytes - bareBytes),
    };
  }
  return {
    calls,
    rounds,
    turnEvery,
    ...result,
    impliedRatio: round(bareHttpUs / (bareHttpUs + Math.max(0, result.inside.overheadUs)), 3),
  };
}

/**
 * {@link measureIsolated} in a fresh Node process with a stack and an engine of its own, its token
 * acquired first: nothing else in that heap. `bareHttpUs` is the bare Agent's CPU per real request.
 */
export function measureIsolatedAlone(bareHttpUs: number): Promise<UndiciIsolated> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--isolated-json'], {
      env: { ...process.env, BARE_HTTP_US: String(bareHttpUs) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as UndiciIsolated) : reject(new Error(`the isolated undici measurement exited with ${code}`))));
  });
}

/** The child of {@link measureIsolatedAlone}: the same engine options, session and request as {@link measureUndici}. */
async function isolatedInThisProcess(bareHttpUs: number): Promise<UndiciIsolated> {
  const stack = await startBenchStack();
  try {
    const resource = 'http://127.0.0.1:9/undici';
    stack.as.allowedResources = [...(stack.as.allowedResources ?? []), resource];
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
      resource,
    });
    const session = { user: 'bench-undici', idToken: () => stack.idp.mintIdToken({ sub: 'bench-undici' }) };
    const { token } = await xaa.getAccessToken({ ...session, url: resource });
    if (!stack.as.verifyAccessToken(token)) throw new Error('undici: no valid token was acquired');
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
    return await measureIsolated(xaa, session, resource, body, { 'content-type': 'application/json', authorization: `Bearer ${token}` }, bareHttpUs);
  } finally {
    await stack.close();
  }
}

// Run by measureIsolatedAlone: node --expose-gc --import tsx bench/undici.ts --isolated-json (after npm run build).
if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--isolated-json')) {
  process.stdout.write(JSON.stringify(await isolatedInThisProcess(Number(process.env.BARE_HTTP_US))));
}
