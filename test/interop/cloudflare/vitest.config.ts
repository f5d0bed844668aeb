import { defineConfig } from 'vitest/config';

// `npm run interop`: the Cloudflare workers-oauth-provider interop suite. Not part of `npm test`
// (whose config includes only test/**/*.test.ts).
export default defineConfig({
  test: {
    root: new URL('../../..', import.meta.url).pathname,
    include: ['test/interop/cloudflare/**/*.interop.ts'],
    globalSetup: ['test/interop/cloudflare/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 90_000,
    // .ci/run prints a plain 'N passed, N failed' line from it.
    reporters: ['default', ['json', { outputFile: '.vitest/interop-results.json' }]],
  },
});
