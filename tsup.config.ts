import { defineConfig } from 'tsup';

export default defineConfig({
  // Entry points sharing one copy of the engine (its private state is keyed by instance, and
  // `instanceof` must hold across them): splitting on for both formats. `undici` and `redis` are
  // optional peers, loaded only by their own entry points (never by the core); `jose` and the MCP SDK
  // too, loaded only by `cross-app-access dev`.
  entry: { index: 'src/index.ts', undici: 'src/undici.ts', redis: 'src/redis.ts', cli: 'src/cli/main.ts' },
  splitting: true,
  external: ['undici', 'redis', 'jose', 'zod', /^@modelcontextprotocol\/sdk(\/|$)/, /^node:/],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'neutral',
  treeshake: true,
});
