/**
 * DPoP on the warm path (RFC 9449): requests per second and client CPU per request through
 * `withCrossAppAccess(fetch)` holding a cached token, with `dpop: true` (a new ES256 proof signed for
 * every request, `ath` hashed once per token) against the same wrapper with a Bearer token, at a fixed
 * number of requests in flight, in alternating slices; plus the wrapper's own CPU per call without
 * the network (a `next` that answers at once), where the proof's signature is all of the difference.
 * The target (bench/warm.ts's child-process server) does not verify tokens or proofs.
 */
import { withCrossAppAccess } from 'cross-app-access';
import type { FetchFn, Stack } from './contenders.js';
import { median, percentile, round } from './stats.js';
import { cpuPerCall, okResponse, slice } from './slice.js';
import { startWarmServer } from './warm.js';

export interface DpopBenchOptions {
  concurrency: number;
  /** Measured slice pairs (alternating which goes first). */
  pairs: number;
  sliceMs: number;
  warmupMs: number;
  /** Calls per isolated round, and rounds. */
  isolatedCalls: number;
  isolatedRounds: number;
}

export interface DpopBenchResult {
  concurrency: number;
  pairs: number;
  sliceMs: number;
  bearerMedianRps: number;
  dpopMedianRps: number;
  /** Median of the per-pair ratios DPoP / Bearer (requests per second). */
  pairedRatioMedian: number;
  pairedRatioIqr: [number, number];
  bearerCpuUsPerRequest: number;
  dpopCpuUsPerRequest: number;
  /** bearer CPU / DPoP CPU: the throughput ratio a CPU-bound client would see. */
  cpuRatio: number;
  /** Without the network: the wrapper's CPU per call, each way, and the difference (the proof). */
  isolated: { calls: number; rounds: number; bearerUs: number; dpopUs: number; proofUs: number };
  errors: number;
}

export async function measureDpop(stack: Stack, options: DpopBenchOptions): Promise<DpopBenchResult> {
  const server = await startWarmServer();
  const resource = `${server.origin}/warm`;
  stack.as.allowedResources = [...(stack.as.allowedResources ?? []), resource];
  try {
    let next: FetchFn = fetch as FetchFn;
    const wrapper = (dpop: boolean) =>
      withCrossAppAccess((url, init) => next(url, init), {
        idToken: () => stack.idp.mintIdToken(),
        idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
        client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
        resource,
        ...(dpop ? { dpop: true as const } : {}),
      });
    const contenders = { bearer: wrapper(false), dpop: wrapper(true) };
    // One acquisition each; the server echoes the header it got.
    for (const [name, ours] of Object.entries(contenders)) {
      const echoed = await (await ours(`${resource}/echo-authorization`)).text();
      const scheme = name === 'dpop' ? 'DPoP' : 'Bearer';
      if (!echoed.startsWith(`${scheme} `)) throw new Error(`dpop bench: the ${name} wrapper sent ${echoed.split(' ')[0]}, not ${scheme}`);
    }
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
    const send = (ours: FetchFn) => okResponse(() => ours(resource, { method: 'POST', headers: { 'content-type': 'application/json' }, body }));
    const sends = { bearer: send(contenders.bearer), dpop: send(contenders.dpop) };
    await slice(sends.bearer, options.concurrency, options.warmupMs);
    await slice(sends.dpop, options.concurrency, options.warmupMs);

    const rps: Record<'bearer' | 'dpop', number[]> = { bearer: [], dpop: [] };
    const cpu: Record<'bearer' | 'dpop', number[]> = { bearer: [], dpop: [] };
    const ratios: number[] = [];
    let errors = 0;
    for (let i = 0; i < options.pairs; i++) {
      const order = i % 2 === 0 ? (['bearer', 'dpop'] as const) : (['dpop', 'bearer'] as const);
      const pair: Record<'bearer' | 'dpop', number> = { bearer: 0, dpop: 0 };
      for (const who of order) {
        const r = await slice(sends[who], options.concurrency, options.sliceMs);
        pair[who] = r.rps;
        rps[who].push(r.rps);
        cpu[who].push(r.cpuUs);
        errors += r.errors;
      }
      ratios.push(pair.dpop / pair.bearer);
    }

    // Without the network: `next` answers at once.
    const answer = new Response('ok');
    next = async () => answer;
    const isolated: Record<'bearer' | 'dpop', number[]> = { bearer: [], dpop: [] };
    for (let r = 0; r < options.isolatedRounds; r++) {
      for (const who of r % 2 === 0 ? (['bearer', 'dpop'] as const) : (['dpop', 'bearer'] as const)) {
        isolated[who].push(await cpuPerCall(() => contenders[who](resource, { method: 'POST', headers: { 'content-type': 'application/json' }, body }), options.isolatedCalls));
      }
    }
    next = fetch as FetchFn;
    const bearerUs = median(isolated.bearer);
    const dpopUs = median(isolated.dpop);
    return {
      concurrency: options.concurrency,
      pairs: options.pairs,
      sliceMs: options.sliceMs,
      bearerMedianRps: round(median(rps.bearer), 0),
      dpopMedianRps: round(median(rps.dpop), 0),
      pairedRatioMedian: round(median(ratios), 3),
      pairedRatioIqr: [round(percentile(ratios, 25), 3), round(percentile(ratios, 75), 3)],
      bearerCpuUsPerRequest: round(median(cpu.bearer), 1),
      dpopCpuUsPerRequest: round(median(cpu.dpop), 1),
      cpuRatio: round(median(cpu.bearer) / median(cpu.dpop), 3),
      isolated: { calls: options.isolatedCalls, rounds: options.isolatedRounds, bearerUs: round(bearerUs, 2), dpopUs: round(dpopUs, 2), proofUs: round(dpopUs - bearerUs, 2) },
      errors,
    };
  } finally {
    await server.close();
  }
}

const SECTION_TITLE = '## 10. DPoP on the warm path';

/** The BENCHMARKS.md section for a {@link DpopBenchResult}. */
export function dpopSection(r: DpopBenchResult, note: string): string {
  return [
    `${SECTION_TITLE} (concurrency ${r.concurrency}, ${r.pairs} pairs × ${r.sliceMs} ms slices, alternating)`,
    '',
    '`withCrossAppAccess(fetch)` with a cached token, `dpop: true` (an ES256 proof signed with WebCrypto for every request) against the same wrapper with a Bearer token, to a keep-alive server in a child process that does not check either.',
    '',
    '| | Bearer | DPoP | DPoP / Bearer |',
    '|---|---:|---:|---:|',
    `| requests/s (median) | ${r.bearerMedianRps} | ${r.dpopMedianRps} | ${r.pairedRatioMedian} (paired median; IQR ${r.pairedRatioIqr[0]}–${r.pairedRatioIqr[1]}) |`,
    `| client CPU per request (µs) | ${r.bearerCpuUsPerRequest} | ${r.dpopCpuUsPerRequest} | ${r.cpuRatio} (Bearer CPU / DPoP CPU) |`,
    `| wrapper CPU per call, no network (µs; ${r.isolated.rounds} × ${r.isolated.calls} calls) | ${r.isolated.bearerUs} | ${r.isolated.dpopUs} | +${r.isolated.proofUs} µs per proof |`,
    '',
    `Errors: ${r.errors}. ${note}`,
  ].join('\n');
}

/** BENCHMARKS.md with the DPoP section put in place (replaced, or added before the closing sections). */
export function withDpopSection(markdown: string, section: string): string {
  const start = markdown.indexOf(SECTION_TITLE);
  if (start >= 0) {
    const end = markdown.indexOf('\n## ', start + SECTION_TITLE.length);
    return `${markdown.slice(0, start)}${section}\n${end < 0 ? '' : markdown.slice(end)}`;
  }
  const before = markdown.indexOf('\n## Where the SDK provider does better');
  if (before < 0) return `${markdown.trimEnd()}\n\n${section}\n`;
  return `${markdown.slice(0, before)}\n${section}\n${markdown.slice(before)}`;
}
