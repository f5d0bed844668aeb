import { defineConfig } from 'tsup';

export default defineConfig({
  // `redis`: the cross-app-access/redis entry point (Node only: node:crypto; never loaded by the core).
  entry: { index: 'src/index.ts', redis: 'src/redis.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'neutral',
  external: ['redis', /^node:/],
  treeshake: true,
});
