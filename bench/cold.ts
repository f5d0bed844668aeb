/**
 * Cold start: HTTP round trips and wall time from a brand-new wrapper/provider and client to the first
 * authenticated MCP response (`initialize` answered 200). Variants run interleaved, one run each per
 * round, in a rotating order; every run builds everything anew over the same servers.
 */
import { Client } from '@modelcontextprotocol/client';
import { CountingFetch, makeAuth, makeTransport, type Contender, type Counts, type OursConfig, type Stack } from './contenders.js';
import { bootstrapSe, median, percentile, round } from './stats.js';

export interface ColdVariant {
  id: string;
  contender: Contender;
  /** Whether the `resource` hint is given; `null` when the implementation has no such option. */
  resourceHint: boolean | null;
  /** How the IdP is configured. */
  idp: string;
  config?: OursConfig;
}

export const COLD_VARIANTS: ColdVariant[] = [
  { id: 'ours-hint', contender: 'ours', resourceHint: true, idp: 'idp.issuer (discovered)', config: { resource: true } },
  { id: 'ours-nohint', contender: 'ours', resourceHint: false, idp: 'idp.issuer (discovered)', config: { resource: false } },
  { id: 'sdk', contender: 'sdk', resourceHint: false, idp: 'token endpoint given to requestJwtAuthorizationGrant' },
  { id: 'ours-hint-te', contender: 'ours', resourceHint: true, idp: 'idp.tokenEndpoint', config: { resource: true, idpTokenEndpoint: true } },
  { id: 'ours-pinned', contender: 'ours', resourceHint: true, idp: 'idp.issuer (discovered); client.issuer pinned', config: { resource: true, clientIssuer: true } },
  { id: 'ours-nohint-te', contender: 'ours', resourceHint: false, idp: 'idp.tokenEndpoint', config: { resource: false, idpTokenEndpoint: true } },
];

export interface ColdRow {
  id: string;
  contender: Contender;
  resourceHint: boolean | null;
  idp: string;
  /** Requests up to and including the first authenticated MCP response, by category. */
  roundTrips: Counts;
  /** Round trips one after another before the first authenticated response (median over the runs): the critical path. */
  criticalPath: number;
  /** True when every run made the same requests. */
  roundTripsStable: boolean;
  runs: number;
  medianMs: number;
  p90Ms: number;
  minMs: number;
  /** Bootstrap standard errors of the median and the p90. */
  medianSeMs: number;
  p90SeMs: number;
  /** Every measured run's wall time, in the order run. */
  samplesMs: number[];
  failures: number;
}

export interface ColdResult {
  rounds: number;
  warmupRounds: number;
  rows: ColdRow[];
  /** CPU cost of making one wrapper / one provider (µs, mean over many, JIT warm): part of every cold start. */
  constructionUs: { ours: number; sdk: number };
}

/** Mean µs to build one wrapper (`withCrossAppAccess`, options validated) and one SDK provider. */
function constructionCost(stack: Stack): { ours: number; sdk: number } {
  const time = (make: () => unknown) => {
    for (let i = 0; i < 200; i++) make();
    const n = 2000;
    const started = performance.now();
    for (let i = 0; i < n; i++) make();
    return ((performance.now() - started) / n) * 1000;
  };
  return {
    ours: round(time(() => makeAuth(stack, 'ours', fetch, { resource: true })), 1),
    sdk: round(time(() => makeAuth(stack, 'sdk', fetch)), 1),
  };
}

async function coldRun(stack: Stack, variant: ColdVariant): Promise<{ ms: number; counts: Counts; criticalPath: number }> {
  const counting = new CountingFetch(stack);
  const started = performance.now();
  const auth = makeAuth(stack, variant.contender, counting.fetch, variant.config);
  const client = new Client({ name: 'bench-cold', version: '1.0.0' });
  try {
    await client.connect(makeTransport(stack, auth));
  } finally {
    await client.close().catch(() => undefined);
  }
  const first = counting.firstAuthorized;
  if (!first) throw new Error(`${variant.id}: no authenticated MCP response`);
  return { ms: first.at - started, counts: first.counts, criticalPath: first.criticalPath };
}

const sameCounts = (a: Counts, b: Counts) => (Object.keys(a) as (keyof Counts)[]).every((k) => a[k] === b[k]);

export async function measureCold(stack: Stack, rounds: number, warmupRounds: number, variants = COLD_VARIANTS): Promise<ColdResult> {
  const times = new Map<string, number[]>(variants.map((v) => [v.id, []]));
  const counts = new Map<string, Counts[]>(variants.map((v) => [v.id, []]));
  const paths = new Map<string, number[]>(variants.map((v) => [v.id, []]));
  const failures = new Map<string, number>(variants.map((v) => [v.id, 0]));
  for (let r = 0; r < warmupRounds + rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(r + i) % variants.length]!;
      try {
        const run = await coldRun(stack, variant);
        if (r >= warmupRounds) {
          times.get(variant.id)!.push(run.ms);
          counts.get(variant.id)!.push(run.counts);
          paths.get(variant.id)!.push(run.criticalPath);
        }
      } catch (error) {
        if (r >= warmupRounds) failures.set(variant.id, failures.get(variant.id)! + 1);
        if (r === 0) console.error(`cold ${variant.id}:`, error);
      }
    }
    // The servers' request logs are only for tests; keep them from growing.
    stack.reset();
  }
  return {
    rounds,
    warmupRounds,
    constructionUs: constructionCost(stack),
    rows: variants.map((v) => {
      const t = times.get(v.id)!;
      const c = counts.get(v.id)!;
      return {
        id: v.id,
        contender: v.contender,
        resourceHint: v.resourceHint,
        idp: v.idp,
        roundTrips: c[0] ?? { mcp: 0, metadata: 0, idp: 0, as: 0, other: 0, total: 0 },
        criticalPath: median(paths.get(v.id)!),
        roundTripsStable: c.every((x) => sameCounts(x, c[0]!)),
        runs: t.length,
        medianMs: round(median(t)),
        p90Ms: round(percentile(t, 90)),
        minMs: round(Math.min(...t)),
        medianSeMs: round(bootstrapSe(t, median)),
        p90SeMs: round(bootstrapSe(t, (xs) => percentile(xs, 90))),
        samplesMs: t.map((x) => round(x)),
        failures: failures.get(v.id)!,
      };
    }),
  };
}
