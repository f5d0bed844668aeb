import { defineConfig } from 'tsup';

export default defineConfig({
  // Two entry points sharing one copy of the engine (its private state is keyed by instance, and
  // `instanceof` must hold across them): splitting on for both formats.
  entry: { index: 'src/index.ts', undici: 'src/undici.ts', cli: 'src/cli/main.ts' },
  splitting: true,
  external: ['undici'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'neutral',
  treeshake: true,
});
