/**
 * OpenTelemetry: the Node SDK with console exporters, and cross-app-access's instrumentation. One
 * tool call signed in with Cross-App Access prints its spans (discovery, the token exchange, the
 * jwt-bearer grant, children of the application's own span) and, on shutdown, its metrics.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then `npx tsx examples/otel.ts`.
 */
import { trace } from '@opentelemetry/api';
import { ConsoleMetricExporter, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ConsoleSpanExporter } from '@opentelemetry/sdk-trace-base';
import { CrossAppAccess } from 'cross-app-access';
import { CrossAppAccessInstrumentation } from 'cross-app-access/otel';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const sdk = new NodeSDK({
  serviceName: 'example-gateway',
  traceExporter: new ConsoleSpanExporter(),
  metricReader: new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 60_000 }),
  instrumentations: [new CrossAppAccessInstrumentation()],
});
sdk.start();

const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
});
const aliceFetch = xaa.fetch(fetch, { user: 'alice', idToken: env('XAA_ID_TOKEN') });

// The application's own span: the package's spans are its children.
await trace.getTracer('example-gateway').startActiveSpan('tool call', async (span) => {
  const response = await aliceFetch(env('XAA_MCP_URL'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
  console.log('tools/list:', response.status);
  await response.body?.cancel();
  span.end();
});
await sdk.shutdown();
