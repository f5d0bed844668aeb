/**
 * Sustained: MCP `echo` tool calls per second through one connected v2 client per contender, with a
 * fixed number of calls in flight, in interleaved slices (ABBA order, so drift favours neither).
 */
import type { Client } from '@modelcontextprotocol/client';
import { CountingFetch, connectClient, makeAuth, type Contender, type Stack } from './contenders.js';
import { round } from './stats.js';

export interface SustainedRow {
  contender: Contender;
  calls: number;
  errors: number;
  seconds: number;
  /** Total calls / total time. */
  callsPerSecond: number;
  /** Calls/s of each slice, in the order run. */
  slices: number[];
  /** Token requests this contender made at the IdP / the AS during the slices (after connecting). */
  exchanges: number;
  grants: number;
}

export interface SustainedResult {
  concurrency: number;
  slicesPerContender: number;
  sliceMs: number;
  ours: SustainedRow;
  sdk: SustainedRow;
  /** ours.callsPerSecond / sdk.callsPerSecond. */
  ratio: number;
}

async function slice(client: Client, concurrency: number, ms: number): Promise<{ calls: number; errors: number; ms: number }> {
  let calls = 0;
  let errors = 0;
  const started = performance.now();
  const end = started + ms;
  const loop = async () => {
    while (performance.now() < end) {
      try {
        const result = await client.callTool({ name: 'echo', arguments: { text: 'sustained' } });
        if ((result as { isError?: boolean }).isError) errors++;
        else calls++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { calls, errors, ms: performance.now() - started };
}

export async function measureSustained(stack: Stack, concurrency: number, slicesPerContender: number, sliceMs: number): Promise<SustainedResult> {
  const counting: Record<Contender, CountingFetch> = { ours: new CountingFetch(stack), sdk: new CountingFetch(stack) };
  const clients: Record<Contender, Client> = {
    ours: await connectClient(stack, makeAuth(stack, 'ours', counting.ours.fetch, { resource: true }), 'bench-sustained-ours'),
    sdk: await connectClient(stack, makeAuth(stack, 'sdk', counting.sdk.fetch), 'bench-sustained-sdk'),
  };
  const before: Record<Contender, { idp: number; as: number }> = {
    ours: { idp: counting.ours.counts.idp, as: counting.ours.counts.as },
    sdk: { idp: counting.sdk.counts.idp, as: counting.sdk.counts.as },
  };
  const totals: Record<Contender, { calls: number; errors: number; ms: number; slices: number[] }> = {
    ours: { calls: 0, errors: 0, ms: 0, slices: [] },
    sdk: { calls: 0, errors: 0, ms: 0, slices: [] },
  };
  try {
    for (const who of ['ours', 'sdk'] as const) await slice(clients[who], concurrency, 1000); // warm-up
    const order: Contender[] = [];
    for (let i = 0; i < slicesPerContender; i++) order.push(...(i % 2 === 0 ? (['ours', 'sdk'] as const) : (['sdk', 'ours'] as const)));
    for (const who of order) {
      const r = await slice(clients[who], concurrency, sliceMs);
      const t = totals[who];
      t.calls += r.calls;
      t.errors += r.errors;
      t.ms += r.ms;
      t.slices.push(round(r.calls / (r.ms / 1000), 0));
      stack.mcp.reset(); // the MCP server's request log is for tests; keep it from growing
    }
  } finally {
    await Promise.all([clients.ours.close(), clients.sdk.close()]);
  }
  const row = (who: Contender): SustainedRow => {
    const t = totals[who];
    return {
      contender: who,
      calls: t.calls,
      errors: t.errors,
      seconds: round(t.ms / 1000, 2),
      callsPerSecond: round(t.calls / (t.ms / 1000), 0),
      slices: t.slices,
      exchanges: counting[who].counts.idp - before[who].idp,
      grants: counting[who].counts.as - before[who].as,
    };
  };
  const ours = row('ours');
  const sdk = row('sdk');
  return { concurrency, slicesPerContender, sliceMs, ours, sdk, ratio: round(ours.callsPerSecond / sdk.callsPerSecond, 3) };
}
