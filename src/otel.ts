/**
 * `cross-app-access/otel`: {@link CrossAppAccessInstrumentation}, the package's spans and metrics
 * for OpenTelemetry, built on `@opentelemetry/api` only (an optional peer dependency).
 *
 * @packageDocumentation
 * @module cross-app-access/otel
 */
export { CrossAppAccessInstrumentation, type CrossAppAccessInstrumentationConfig } from './otel/instrumentation.js';
