/**
 * The OpenTelemetry instrumentation's cost on the warm path (issue 19): one engine with a cached
 * token, `xaa.fetch` over a `next` that answers at once (the code's own cost, no network), CPU per
 * call with `CrossAppAccessInstrumentation` enabled (registered with `registerInstrumentations`, an
 * SDK tracer provider with an in-memory exporter, an async-hooks context manager and a meter
 * provider with a reader, as an application has them) against disabled, in alternating rounds.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { CrossAppAccess } from 'cross-app-access';
import { CrossAppAccessInstrumentation } from 'cross-app-access/otel';
import type { FetchFn, Stack } from './contenders.js';
import { cpuPerCall } from './slice.js';
import { median, percentile, round } from './stats.js';

export interface OtelOptions {
  calls: number;
  rounds: number;
}

export interface OtelResult {
  calls: number;
  rounds: number;
  /** Median CPU per call, µs. */
  noneUsPerCall: number;
  otelUsPerCall: number;
  /** otel / none, median of the per-round ratios, and their interquartile range. */
  ratio: number;
  ratioIqr: [number, number];
  /** Spans the warm calls made (0 expected: no span per warm request). */
  warmSpans: number;
}

class QuietReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export async function measureOtel(stack: Stack, options: OtelOptions): Promise<OtelResult> {
  const spans = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();
  context.setGlobalContextManager(contextManager.enable());
  const instrumentation = new CrossAppAccessInstrumentation({ enabled: false });
  const unregister = registerInstrumentations({
    instrumentations: [instrumentation],
    tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    meterProvider: new MeterProvider({ readers: [new QuietReader()] }),
  });
  try {
    let next: FetchFn = fetch as FetchFn;
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: stack.as.issuer },
      resource: stack.mcp.url,
    });
    const authed = xaa.fetch((url, init) => next(url, init), { user: 'otel-bench', idToken: ({ user }) => stack.idp.mintIdToken({ sub: user }) });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    const init = { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body };
    // The one acquisition, over the network; then the warm path alone.
    const first = await authed(stack.mcp.url, init);
    await first.text();
    if (first.status !== 200) throw new Error(`otel bench: the first call answered ${first.status}`);
    const answer = new Response('ok');
    next = async () => answer;
    const call = () => authed(stack.mcp.url, init);
    const cpu = { none: [] as number[], otel: [] as number[] };
    const ratios: number[] = [];
    spans.reset();
    for (let r = 0; r < options.rounds; r++) {
      for (const who of r % 2 === 0 ? (['none', 'otel'] as const) : (['otel', 'none'] as const)) {
        if (who === 'otel') instrumentation.enable();
        else instrumentation.disable();
        cpu[who].push(await cpuPerCall(call, options.calls));
      }
      ratios.push(cpu.otel.at(-1)! / cpu.none.at(-1)!);
    }
    return {
      calls: options.calls,
      rounds: options.rounds,
      noneUsPerCall: round(median(cpu.none), 3),
      otelUsPerCall: round(median(cpu.otel), 3),
      ratio: round(median(ratios), 3),
      ratioIqr: [round(percentile(ratios, 25), 3), round(percentile(ratios, 75), 3)],
      warmSpans: spans.getFinishedSpans().length,
    };
  } finally {
    instrumentation.disable();
    unregister();
    context.disable();
  }
}

/** The sub-section of the fleet section. */
export function otelSection(o: OtelResult): string {
  return [
    `### The OpenTelemetry instrumentation on the warm path (${o.rounds} alternating rounds × ${o.calls.toLocaleString('en-US')} calls, no network)`,
    '',
    '| | CPU per call (median) | otel / none (median of the rounds, IQR) | Spans from warm calls |',
    '|---|---|---|---|',
    `| Without the instrumentation | ${o.noneUsPerCall} µs | | |`,
    `| \`CrossAppAccessInstrumentation\` enabled (SDK tracer and meter providers, async-hooks context) | ${o.otelUsPerCall} µs | **${o.ratio}** (${o.ratioIqr[0]} – ${o.ratioIqr[1]}) | ${o.warmSpans} |`,
    '',
    'Target: within noise of none (the IQR spans 1), and no span per warm request.',
  ].join('\n');
}
