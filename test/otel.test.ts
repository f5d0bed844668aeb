/**
 * `cross-app-access/otel`: the instrumentation, registered with `registerInstrumentations` as an
 * application would, turns the package's events into spans (the caller's span as parent) and
 * metrics, against the real loopback servers. No attribute carries a token, an ID token, an
 * ID-JAG, a client secret or the user key; the warm path makes no span.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccess, type FetchLike } from '../src/index.js';
import { CrossAppAccessInstrumentation } from '../src/otel.js';
import { listToolsInit } from './helpers/stack-options.js';
import { startStack, type Stack } from './servers/stack.js';

class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const reader = new TestReader();
const meterProvider = new MeterProvider({ readers: [reader] });
const contextManager = new AsyncLocalStorageContextManager();
const instrumentation = new CrossAppAccessInstrumentation();
let unregister: () => void;

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  unregister = registerInstrumentations({ instrumentations: [instrumentation], tracerProvider, meterProvider });
});
afterAll(() => {
  unregister();
  instrumentation.disable();
  context.disable();
});

let stack: Stack;
const asSecret = `as-secret-${randomUUID()}`;
beforeEach(async () => {
  stack = await startStack({ as: { clients: [{ clientId: 'mcp-client', clientSecret: asSecret, method: 'client_secret_basic' }] } });
  spans.reset();
});
afterEach(async () => {
  await stack.close();
});

/** Every credential the flow minted or received, to look for in the telemetry. */
function capturing(secrets: string[]): FetchLike {
  return async (url, init) => {
    const form = new URLSearchParams(typeof init?.body === 'string' ? init.body : '');
    for (const name of ['subject_token', 'assertion', 'client_secret', 'client_assertion']) {
      const value = form.get(name);
      if (value) secrets.push(value);
    }
    const response = await fetch(url, init);
    const json = (await response.clone().json().catch(() => ({}))) as { access_token?: unknown };
    if (typeof json.access_token === 'string') secrets.push(json.access_token);
    return response;
  };
}

const named = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);

async function metricsNow(): Promise<Map<string, ResourceMetrics['scopeMetrics'][number]['metrics'][number]>> {
  const { resourceMetrics } = await reader.collect();
  return new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
}

const total = (metric: { dataPoints: Array<{ value: unknown }> } | undefined) => (metric?.dataPoints ?? []).reduce((sum, p) => sum + (typeof p.value === 'number' ? p.value : (p.value as { count: number }).count), 0);

describe('CrossAppAccessInstrumentation', () => {
  it('spans for discovery, the exchange and the grant, children of the caller\'s span, with HTTP client attributes; none for the warm path', async () => {
    const secrets: string[] = [asSecret];
    const user = 'alice@example.com';
    const xaa = new CrossAppAccess({
      idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
      client: { clientId: 'mcp-client', clientSecret: asSecret },
      resource: stack.mcp.resource,
      oauthFetch: capturing(secrets),
    });
    const gatewayFetch = xaa.fetch(fetch, { user, idToken: async () => { const t = await stack.idp.mintIdToken({ sub: user }); secrets.push(t); return t; } });
    const parent = tracerProvider.getTracer('test').startSpan('gateway request');
    await context.with(trace.setSpan(context.active(), parent), async () => {
      expect((await gatewayFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    });
    parent.end();
    const before = await metricsNow();

    const [exchange] = named('cross-app-access token_exchange');
    const [grant] = named('cross-app-access jwt_bearer');
    expect(exchange).toBeDefined();
    expect(grant).toBeDefined();
    expect(named('cross-app-access discovery').length).toBeGreaterThanOrEqual(2);
    for (const span of [exchange!, grant!, ...named('cross-app-access discovery')]) {
      expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
      expect(span.kind).toBe(2); // CLIENT
    }
    expect(exchange!.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.full': stack.idp.tokenEndpoint, 'server.address': '127.0.0.1', 'cross_app_access.audience': stack.as.issuer });
    expect(grant!.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.full': stack.as.tokenEndpoint, 'cross_app_access.resource': stack.mcp.resource });

    // The warm path: no span, one more cache hit.
    const count = spans.getFinishedSpans().length;
    for (let i = 0; i < 3; i++) expect((await gatewayFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(spans.getFinishedSpans().length).toBe(count);
    const after = await metricsNow();
    expect(total(after.get('cross_app_access.cache.hits')) - total(before.get('cross_app_access.cache.hits'))).toBeGreaterThanOrEqual(3);
    expect(total(after.get('cross_app_access.acquisitions'))).toBeGreaterThanOrEqual(1);
    expect(total(after.get('cross_app_access.acquisition.duration'))).toBeGreaterThanOrEqual(1);

    // Nothing secret, and not the user key, in any attribute of any span or metric.
    const telemetry = JSON.stringify([spans.getFinishedSpans().map((s: ReadableSpan) => s.attributes), [...after.values()].map((m) => m.dataPoints.map((p) => p.attributes))]);
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    for (const secret of secrets) expect(telemetry).not.toContain(secret);
    expect(telemetry).not.toContain(user);
  });

  it('a refused ID token: the exchange span ends in error with the code, the HTTP status and the OAuth error; failures are counted by code', async () => {
    const xaa = new CrossAppAccess({ idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId }, client: { clientId: 'mcp-client', clientSecret: asSecret }, resource: stack.mcp.resource });
    const refused = await stack.idp.mintIdToken({ aud: 'some-other-client' });
    await expect(xaa.fetch(fetch, { user: 'bob', idToken: refused })(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'login_required' });
    const failed = named('cross-app-access token_exchange').find((s) => s.status.code === 2);
    expect(failed?.attributes).toMatchObject({ 'error.type': 'login_required', 'http.response.status_code': 400, 'cross_app_access.oauth.error': 'invalid_grant' });
    const failures = (await metricsNow()).get('cross_app_access.failures');
    expect(failures?.dataPoints.some((p) => p.attributes['error.type'] === 'login_required')).toBe(true);
  });

  it('disabled, it records nothing; enabled again, it does', async () => {
    instrumentation.disable();
    const xaa = new CrossAppAccess({ idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId }, client: { clientId: 'mcp-client', clientSecret: asSecret }, resource: stack.mcp.resource });
    expect((await xaa.fetch(fetch, { user: 'carol', idToken: () => stack.idp.mintIdToken({ sub: 'carol' }) })(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(spans.getFinishedSpans()).toEqual([]);
    instrumentation.enable();
    expect((await xaa.fetch(fetch, { user: 'dave', idToken: () => stack.idp.mintIdToken({ sub: 'dave' }) })(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(named('cross-app-access jwt_bearer')).toHaveLength(1);
    expect(instrumentation.instrumentationName).toBe('cross-app-access');
    expect(instrumentation.getConfig().enabled).toBe(true);
  });
});
