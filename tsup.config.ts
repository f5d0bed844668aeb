import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  // Entry points sharing one copy of the engine (its private state is keyed by instance, and
  // `instanceof` must hold across them): splitting on for both formats. `undici` and `redis` are
  // optional peers, loaded only by their own entry points (never by the core); `jose` and the MCP SDK
  // too, loaded only by `cross-app-access dev`.
  // `@opentelemetry/api` too: an optional peer loaded only by `cross-app-access/otel`.
  entry: { index: 'src/index.ts', undici: 'src/undici.ts', redis: 'src/redis.ts', otel: 'src/otel.ts', cli: 'src/cli/main.ts' },
  splitting: true,
  external: ['undici', 'redis', 'jose', 'zod', '@opentelemetry/api', /^@modelcontextprotocol\/sdk(\/|$)/, /^node:/],
  define: { __PACKAGE_VERSION__: JSON.stringify(version) },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'neutral',
  treeshake: true,
});
