/**
 * Warm-path overhead: requests per second through `withCrossAppAccess(fetch)` holding a cached token,
 * versus bare `fetch` sending the same `Authorization: Bearer` header, against the same keep-alive
 * server, at a fixed number of requests in flight, in alternating slices.
 *
 * The target server runs in a child process (so neither its event loop nor its CPU time is charged
 * to the client) and answers 200 `ok` to anything; it does not check the token. The one acquisition
 * goes to the real IdP and authorization server. Besides requests/s, each slice records the client
 * process's CPU time per request, which other load on the machine disturbs much less than throughput.
 */
import { spawn } from 'node:child_process';
import { CrossAppAccessProvider, withOAuth } from '@modelcontextprotocol/client';
import { AsyncLocalStorage } from 'node:async_hooks';
import { CrossAppAccess, withCrossAppAccess } from 'cross-app-access';
import type { FetchFn, Stack } from './contenders.js';
import { median, percentile, round } from './stats.js';
import { cpuPerCall, okResponse, slice } from './slice.js';

export interface WarmOptions {
  /** Requests in flight. */
  concurrency: number;
  /** Measured slices per contender (run in pairs, alternating which goes first). */
  slices: number;
  sliceMs: number;
  /** One unmeasured slice per contender first. */
  warmupMs: number;
}

export interface WarmResult {
  concurrency: number;
  slices: number;
  sliceMs: number;
  body: string;
  /** Requests per second of each measured slice, in the order run. */
  oursSlices: number[];
  bareSlices: number[];
  oursMedianRps: number;
  bareMedianRps: number;
  /** oursMedianRps / bareMedianRps. */
  ratio: number;
  /** Median of the per-pair ratios ours/bare (each pair run back to back). */
  pairedRatioMedian: number;
  /** 25th and 75th percentiles of the per-pair ratios: the spread. */
  pairedRatioIqr: [number, number];
  /** Client process CPU time per request (µs, user + system), median over slices. */
  oursCpuUsPerRequest: number;
  bareCpuUsPerRequest: number;
  /** bareCpuUsPerRequest / oursCpuUsPerRequest: the throughput ratio a CPU-bound client would see. */
  cpuRatio: number;
  /** Token acquisitions seen by the IdP / AS during the whole section (1 and 1 expected). */
  exchanges: number;
  grants: number;
  /** Non-200 answers or thrown errors, over all slices. */
  errors: number;
  /**
   * The wrapper's own cost, without the network: CPU per call with a `next` that answers at once,
   * through the wrapper and bare (building the same header), alternated; µs, medians over rounds.
   */
  isolated: {
    calls: number;
    rounds: number;
    oursUsPerCall: number;
    bareUsPerCall: number;
    overheadUs: number;
    impliedRatio: number;
    /** Against a minimal header-setting wrapper (the floor) and the SDK's withOAuth, per input form. */
    floor: Record<'string' | 'url', { floorUs: number; oursUs: number; sdkUs: number }>;
    /** A gateway's fetch (one engine, user per request from AsyncLocalStorage) against the floor in the same context, URL object. */
    gateway: { floorUs: number; oursUs: number };
  };
}


/**
 * The wrapper's own per-call cost, which the HTTP slices measure only through the noise of a shared
 * 2-core machine: `next` is swapped for a stub once the token is cached. The implied ratio is what a
 * CPU-bound client sending real requests of `bareHttpUs` each would see.
 */
async function measureIsolated(
  ours: (next: FetchFn) => FetchFn,
  token: string,
  resource: string,
  body: string,
  bareHttpUs: number,
  gateway: { fetch: FetchFn; run: <T>(call: () => T) => T },
): Promise<WarmResult['isolated']> {
  const answer = new Response('ok');
  const stub: FetchFn = async () => answer;
  const viaWrapper = ours(stub);
  const headers = { 'content-type': 'application/json' };
  const sendOurs = () => viaWrapper(resource, { method: 'POST', headers, body });
  // What bare fetch does for the same call before the network: the header merge.
  const sendBare = () => stub(resource, { method: 'POST', headers: new Headers({ ...headers, authorization: `Bearer ${token}` }), body });
  const calls = 100_000;
  const rounds = 6;
  // The floor: a minimal wrapper that only sets the header; the SDK: withOAuth over its
  // CrossAppAccessProvider holding the same token. Each with a string URL and with a URL object
  // (what MCP transports pass).
  const authorization = `Bearer ${token}`;
  const floor: FetchFn = (url, init) => stub(url, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization } });
  const provider = new CrossAppAccessProvider({ assertion: async () => 'unused', clientId: 'mcp-client', clientSecret: 'mcp-secret', expectedIssuer: new URL(resource).origin });
  await provider.saveTokens({ access_token: token, token_type: 'Bearer' });
  const sdk = withOAuth(provider, resource)(stub) as FetchFn;
  const url = new URL(resource);
  const form = (f: FetchFn, target: string | URL) => () => f(target, { method: 'POST', headers, body });
  const contenders: Record<string, () => Promise<unknown>> = {
    ours: sendOurs,
    bare: sendBare,
    floorString: form(floor, resource),
    floorUrl: form(floor, url),
    oursUrl: form(viaWrapper, url),
    sdkString: form(sdk, resource),
    sdkUrl: form(sdk, url),
    // The same inside the request's AsyncLocalStorage context, as a gateway runs them.
    floorUrlInContext: () => gateway.run(form(floor, url)),
    gatewayUrl: () => gateway.run(form(gateway.fetch, url)),
  };
  const samples: Record<string, number[]> = {};
  const names = Object.keys(contenders);
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) (samples[name] ??= []).push(await cpuPerCall(contenders[name]!, calls));
  }
  const m = (name: string) => round(median(samples[name]!), 2);
  const overheadUs = Math.max(0, median(samples.ours!) - median(samples.bare!));
  return {
    calls,
    rounds,
    oursUsPerCall: m('ours'),
    bareUsPerCall: m('bare'),
    overheadUs: round(overheadUs, 2),
    impliedRatio: round(bareHttpUs / (bareHttpUs + overheadUs), 3),
    floor: {
      string: { floorUs: m('floorString'), oursUs: m('ours'), sdkUs: m('sdkString') },
      url: { floorUs: m('floorUrl'), oursUs: m('oursUrl'), sdkUs: m('sdkUrl') },
    },
    gateway: { floorUs: m('floorUrlInContext'), oursUs: m('gatewayUrl') },
  };
}

// CommonJS, run by `node -e` in a child process: a keep-alive server answering 200 "ok".
const SERVER_SOURCE = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  const auth = req.headers.authorization || '';
  req.resume();
  req.on('end', () => {
    const body = req.url === '/warm/echo-authorization' ? auth : 'ok';
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/** The warm-path target in a child process (also used by the undici and Redis sections). */
export async function startWarmServer(): Promise<{ origin: string; close(): Promise<void> }> {
  // stdin is a pipe: the server exits when it closes, also if this process dies.
  const child = spawn(process.execPath, ['-e', SERVER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`warm server exited (${code})`)));
  });
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}


export async function measureWarm(stack: Stack, options: WarmOptions): Promise<WarmResult> {
  const server = await startWarmServer();
  const resource = `${server.origin}/warm`;
  stack.as.allowedResources = [...(stack.as.allowedResources ?? []), resource];
  const exchangesBefore = stack.idp.counters.exchange;
  const grantsBefore = stack.as.counters.grant;
  try {
    // `next` can be swapped once the token is cached, for the isolated measurement below.
    let next: FetchFn = fetch as FetchFn;
    const ours = withCrossAppAccess((url, init) => next(url, init), {
      idToken: () => stack.idp.mintIdToken(),
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
      resource,
    });
    // The one acquisition; the server echoes the header so bare fetch can send the same token.
    const echoed = await (await ours(`${resource}/echo-authorization`)).text();
    const token = /^Bearer (.+)$/.exec(echoed)?.[1];
    if (!token || !stack.as.verifyAccessToken(token)) throw new Error('warm: no valid token was acquired');

    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
    const sendOurs = okResponse(() => ours(resource, { method: 'POST', headers: { 'content-type': 'application/json' }, body }));
    const sendBare = okResponse(() =>
      fetch(resource, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body }),
    );

    await slice(sendOurs, options.concurrency, options.warmupMs);
    await slice(sendBare, options.concurrency, options.warmupMs);

    const oursSlices: number[] = [];
    const bareSlices: number[] = [];
    const pairRatios: number[] = [];
    const cpu: Record<'ours' | 'bare', number[]> = { ours: [], bare: [] };
    let errors = 0;
    for (let i = 0; i < options.slices; i++) {
      // Alternate which goes first, so drift within a pair favours neither.
      const order = i % 2 === 0 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const);
      const rps: Record<'ours' | 'bare', number> = { ours: 0, bare: 0 };
      for (const who of order) {
        const r = await slice(who === 'ours' ? sendOurs : sendBare, options.concurrency, options.sliceMs);
        rps[who] = r.rps;
        cpu[who].push(r.cpuUs);
        errors += r.errors;
      }
      oursSlices.push(round(rps.ours, 0));
      bareSlices.push(round(rps.bare, 0));
      pairRatios.push(rps.ours / rps.bare);
    }
    const oursMedianRps = median(oursSlices);
    const bareMedianRps = median(bareSlices);
    // A gateway's fetch: one engine, the user resolved per request from AsyncLocalStorage.
    const requestContext = new AsyncLocalStorage<string>();
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
      resource,
    });
    const idToken = () => stack.idp.mintIdToken({ sub: 'gateway-user' });
    await xaa.getAccessToken({ user: 'gateway-user', idToken, url: resource });
    const gatewayFetch = xaa.fetch((url, init) => next(url, init), { user: () => requestContext.getStore(), idToken }) as FetchFn;
    const isolated = await measureIsolated(
      (stub) => {
        next = stub;
        return ours;
      },
      token,
      resource,
      body,
      median(cpu.bare),
      { fetch: gatewayFetch, run: (call) => requestContext.run('gateway-user', call) },
    );
    next = fetch as FetchFn;
    return {
      concurrency: options.concurrency,
      slices: options.slices,
      sliceMs: options.sliceMs,
      body: `POST, ${Buffer.byteLength(body)}-byte JSON string body, response read in full`,
      oursSlices,
      bareSlices,
      oursMedianRps: round(oursMedianRps, 0),
      bareMedianRps: round(bareMedianRps, 0),
      ratio: round(oursMedianRps / bareMedianRps, 3),
      pairedRatioMedian: round(median(pairRatios), 3),
      pairedRatioIqr: [round(percentile(pairRatios, 25), 3), round(percentile(pairRatios, 75), 3)],
      oursCpuUsPerRequest: round(median(cpu.ours), 1),
      bareCpuUsPerRequest: round(median(cpu.bare), 1),
      cpuRatio: round(median(cpu.bare) / median(cpu.ours), 3),
      exchanges: stack.idp.counters.exchange - exchangesBefore,
      grants: stack.as.counters.grant - grantsBefore,
      errors,
      isolated,
    };
  } finally {
    await server.close();
  }
}
