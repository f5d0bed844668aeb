/**
 * Concurrency: 50 brand-new v2 clients connect at once over transports that share ONE wrapper (ours)
 * or ONE provider (SDK), each calling `whoami`; then every access token is revoked at the
 * authorization server and the 50 connected clients each call `echo` at once. Counted at the
 * servers: token exchanges (IdP) and jwt-bearer grants (AS), and at the client: calls that succeeded.
 */
import { Client } from '@modelcontextprotocol/client';
import { CountingFetch, makeAuth, makeTransport, type Contender, type OursConfig, type Stack } from './contenders.js';
import { round } from './stats.js';

export interface ConcurrencyPhase {
  calls: number;
  succeeded: number;
  exchanges: number;
  grants: number;
  /** Every HTTP request the implementation made in this phase (MCP, metadata, IdP, AS). */
  httpRequests: number;
  metadataRequests: number;
  wallMs: number;
  /** The first failure's message, if any. */
  firstError?: string;
}

export interface ConcurrencyRow {
  id: string;
  contender: Contender;
  resourceHint: boolean | null;
  cold: ConcurrencyPhase;
  revoked: ConcurrencyPhase;
}

export interface ConcurrencyResult {
  clients: number;
  rows: ConcurrencyRow[];
}

export const CONCURRENCY_VARIANTS: { id: string; contender: Contender; resourceHint: boolean | null; config?: OursConfig }[] = [
  { id: 'ours-hint', contender: 'ours', resourceHint: true, config: { resource: true } },
  { id: 'ours-nohint', contender: 'ours', resourceHint: false, config: { resource: false } },
  { id: 'sdk', contender: 'sdk', resourceHint: false },
];

function isToolError(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true;
}

async function phase<T>(stack: Stack, counting: CountingFetch, calls: (() => Promise<T>)[]): Promise<{ phase: ConcurrencyPhase; values: (T | undefined)[] }> {
  const exchanges = stack.idp.counters.exchange;
  const grants = stack.as.counters.grant;
  const requests = counting.counts.total;
  const metadata = counting.counts.metadata;
  const started = performance.now();
  const settled = await Promise.allSettled(calls.map((call) => call()));
  const wallMs = performance.now() - started;
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  const result: ConcurrencyPhase = {
    calls: calls.length,
    succeeded: settled.filter((s) => s.status === 'fulfilled').length,
    exchanges: stack.idp.counters.exchange - exchanges,
    grants: stack.as.counters.grant - grants,
    httpRequests: counting.counts.total - requests,
    metadataRequests: counting.counts.metadata - metadata,
    wallMs: round(wallMs, 1),
  };
  if (failed) result.firstError = String((failed.reason as Error)?.message ?? failed.reason).slice(0, 200);
  return { phase: result, values: settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) };
}

export async function measureConcurrency(stack: Stack, clients: number): Promise<ConcurrencyResult> {
  const rows: ConcurrencyRow[] = [];
  for (const variant of CONCURRENCY_VARIANTS) {
    stack.reset();
    const counting = new CountingFetch(stack);
    const auth = makeAuth(stack, variant.contender, counting.fetch, variant.config);

    const cold = await phase(
      stack,
      counting,
      Array.from({ length: clients }, (_, i) => async () => {
        const client = new Client({ name: `bench-concurrency-${i}`, version: '1.0.0' });
        await client.connect(makeTransport(stack, auth));
        const result = await client.callTool({ name: 'whoami' });
        if (isToolError(result)) throw new Error('whoami returned isError');
        return client;
      }),
    );
    const connected = cold.values.filter((c): c is Client => c !== undefined);

    stack.as.revokeAll();
    const revoked = await phase(
      stack,
      counting,
      connected.map((client) => async () => {
        const result = await client.callTool({ name: 'echo', arguments: { text: 'after revocation' } });
        if (isToolError(result)) throw new Error('echo returned isError');
        return true;
      }),
    );
    // Calls that could not be made (their client never connected) count as failed.
    revoked.phase.calls = clients;

    await Promise.all(connected.map((c) => c.close().catch(() => undefined)));
    rows.push({ id: variant.id, contender: variant.contender, resourceHint: variant.resourceHint, cold: cold.phase, revoked: revoked.phase });
  }
  stack.reset();
  return { clients, rows };
}
