import { defineConfig } from 'vitest/config';

// `npm run interop`, second suite: oidc-provider 9 as the authorization server, DPoP-bound tokens.
// Not part of `npm test` (whose config includes only test/**/*.test.ts).
export default defineConfig({
  test: {
    root: new URL('../../..', import.meta.url).pathname,
    include: ['test/interop/oidc-provider/**/*.interop.ts'],
    testTimeout: 30_000,
    // .ci/run prints a plain 'N passed, N failed' line from it.
    reporters: ['default', ['json', { outputFile: '.vitest/interop-oidc-provider-results.json' }]],
  },
});
