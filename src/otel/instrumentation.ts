import { context, metrics, SpanKind, SpanStatusCode, trace, type Attributes, type Counter, type Histogram, type Meter, type MeterProvider, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { DIAGNOSTICS_CHANNEL, type CrossAppAccessEvent } from '../events.js';
import { warmPathStats } from '../engine/stats.js';
import { spanOf } from './spans.js';

/**
 * Options of {@link CrossAppAccessInstrumentation} (the `InstrumentationConfig` of
 * `@opentelemetry/instrumentation`).
 *
 * @example
 * ```ts
 * const config: CrossAppAccessInstrumentationConfig = { enabled: true };
 * ```
 */
export interface CrossAppAccessInstrumentationConfig {
  /** Whether it records (default true); `registerInstrumentations` enables it. */
  enabled?: boolean | undefined;
}

const NAME = 'cross-app-access';
// The package's version, written in by the build (tsup `define`); '0.0.0' when run from source.
declare const __PACKAGE_VERSION__: string | undefined;
const VERSION = typeof __PACKAGE_VERSION__ === 'string' ? __PACKAGE_VERSION__ : '0.0.0';

interface Subscription {
  unsubscribe(): void;
}

interface Instruments {
  acquisitions: Counter;
  acquisitionDuration: Histogram;
  failures: Counter;
  storeHits: Counter;
  stepUps: Counter;
  retries: Counter;
  invalidations: Counter;
}

/**
 * An OpenTelemetry instrumentation for cross-app-access: it turns the package's events (on
 * `node:diagnostics_channel`) into spans and metrics, with nothing to change in the code that makes
 * requests. It implements the `Instrumentation` interface of `@opentelemetry/instrumentation`, so it
 * goes into `registerInstrumentations({ instrumentations: [...] })` and into the Node SDK's
 * `instrumentations`; it is built on `@opentelemetry/api` alone (an optional peer dependency of this
 * entry point; the core never loads it).
 *
 * Spans (kind `CLIENT`, the caller's span as parent where there is one): `cross-app-access
 * discovery`, `cross-app-access token_exchange`, `cross-app-access jwt_bearer`, each with the
 * OpenTelemetry HTTP client attributes (`http.request.method`, `url.full` without query,
 * `server.address`, `server.port`) and, on failure, `error.type` (the error code), the HTTP status
 * and the OAuth error. Metrics: `cross_app_access.acquisitions` (by `outcome`: issued, renewed),
 * `cross_app_access.acquisition.duration` (s), `cross_app_access.failures` (by `error.type` and
 * stage), `cross_app_access.cache.hits` and `.misses` (the warm path, read when metrics are
 * collected: the warm path only increments an integer), `cross_app_access.store.hits` (tokens taken
 * from a fleet's store), `cross_app_access.step_ups`, `cross_app_access.retries`,
 * `cross_app_access.invalidations` (401s). No attribute carries a token, a secret or a user key.
 *
 * @example
 * ```ts
 * import { NodeSDK } from '@opentelemetry/sdk-node';
 * import { CrossAppAccessInstrumentation } from 'cross-app-access/otel';
 *
 * new NodeSDK({ instrumentations: [new CrossAppAccessInstrumentation()] }).start();
 * ```
 */
export class CrossAppAccessInstrumentation {
  /** `cross-app-access`. */
  readonly instrumentationName = NAME;
  /** This package's version. */
  readonly instrumentationVersion = VERSION;
  private config: CrossAppAccessInstrumentationConfig;
  private tracer: Tracer;
  private meter: Meter;
  private instruments: Instruments;
  private subscription: Subscription | undefined;

  /** Made enabled unless `config.enabled` is false (as `@opentelemetry/instrumentation`'s are). */
  constructor(config: CrossAppAccessInstrumentationConfig = {}) {
    this.config = { enabled: true, ...config };
    this.tracer = trace.getTracer(NAME, VERSION);
    this.meter = metrics.getMeter(NAME, VERSION);
    this.instruments = this.makeInstruments();
    if (this.config.enabled) this.enable();
  }

  /** Starts recording: subscribes to the package's diagnostics channel (idempotent). */
  enable(): void {
    if (this.subscription) return;
    const channels = diagnosticsChannel();
    if (!channels) return;
    const onEvent = (message: unknown) => this.record(message as CrossAppAccessEvent);
    channels.subscribe(DIAGNOSTICS_CHANNEL, onEvent);
    this.subscription = { unsubscribe: () => channels.unsubscribe(DIAGNOSTICS_CHANNEL, onEvent) };
  }

  /** Stops recording (idempotent). */
  disable(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  /** Spans go to this provider's tracer from now on. */
  setTracerProvider(provider: TracerProvider): void {
    this.tracer = provider.getTracer(NAME, VERSION);
  }

  /** Metrics go to this provider's meter from now on. */
  setMeterProvider(provider: MeterProvider): void {
    this.meter = provider.getMeter(NAME, VERSION);
    this.instruments = this.makeInstruments();
  }

  /** Replaces the configuration; `enabled: false` disables it. */
  setConfig(config: CrossAppAccessInstrumentationConfig): void {
    this.config = { enabled: true, ...config };
    if (this.config.enabled === false) this.disable();
  }

  /** The current configuration. */
  getConfig(): CrossAppAccessInstrumentationConfig {
    return this.config;
  }

  private makeInstruments(): Instruments {
    const m = this.meter;
    const stats = warmPathStats();
    m.createObservableCounter('cross_app_access.cache.hits', { description: 'Requests served with a token held in the process (the warm path)' }).addCallback((result) => result.observe(stats.hits));
    m.createObservableCounter('cross_app_access.cache.misses', { description: 'Token lookups that found no usable token in the process' }).addCallback((result) => result.observe(stats.misses));
    return {
      acquisitions: m.createCounter('cross_app_access.acquisitions', { description: 'Access tokens acquired (token exchange and jwt-bearer grant), by outcome' }),
      acquisitionDuration: m.createHistogram('cross_app_access.acquisition.duration', { description: 'Wall time of an acquisition: ID token, exchange and grant', unit: 's' }),
      failures: m.createCounter('cross_app_access.failures', { description: 'Requests rejected (and background renewals failed), by error code' }),
      storeHits: m.createCounter('cross_app_access.store.hits', { description: "Tokens taken from the fleet's shared store, with no acquisition" }),
      stepUps: m.createCounter('cross_app_access.step_ups', { description: '403 insufficient_scope challenges answered with a wider token' }),
      retries: m.createCounter('cross_app_access.retries', { description: 'Metadata and token requests tried again' }),
      invalidations: m.createCounter('cross_app_access.invalidations', { description: 'Tokens refused by an MCP server (401) and dropped' }),
    };
  }

  /** One event: its span, if it is a step of the flow, and its metrics. Never throws. */
  private record(event: CrossAppAccessEvent): void {
    try {
      const span = spanOf(event);
      if (span) {
        const end = Date.now();
        const started = this.tracer.startSpan(span.name, { kind: SpanKind.CLIENT, startTime: end - event.durationMs, attributes: span.attributes }, context.active());
        if (span.error) started.setStatus({ code: SpanStatusCode.ERROR, message: span.error });
        started.end(end);
      }
      this.count(event);
    } catch {
      // Telemetry must never fail the request it observes.
    }
  }

  private count(event: CrossAppAccessEvent): void {
    const i = this.instruments;
    switch (event.type) {
      case 'token_issued':
      case 'token_renewed': {
        const outcome: Attributes = { outcome: event.type === 'token_issued' ? 'issued' : 'renewed' };
        i.acquisitions.add(1, outcome);
        i.acquisitionDuration.record(event.durationMs / 1000, outcome);
        break;
      }
      case 'failure':
        i.failures.add(1, { 'error.type': event.code, 'cross_app_access.stage': event.stage });
        break;
      case 'token_shared':
        i.storeHits.add(1);
        break;
      case 'step_up':
        i.stepUps.add(1);
        break;
      case 'retry':
        i.retries.add(1, { 'cross_app_access.stage': event.stage, 'error.type': event.code });
        break;
      case 'token_invalidated':
        i.invalidations.add(1);
        break;
      default:
        break;
    }
  }
}

interface DiagnosticsChannels {
  subscribe(name: string, onMessage: (message: unknown) => void): void;
  unsubscribe(name: string, onMessage: (message: unknown) => void): void;
}

function diagnosticsChannel(): DiagnosticsChannels | undefined {
  return (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:diagnostics_channel') as DiagnosticsChannels | undefined;
}
