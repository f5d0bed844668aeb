// The dev servers' HTTP helpers (src/cli/dev/servers/, shipped for `cross-app-access dev`), and what
// only the tests need of them.
import type { RecordedRequest } from '../../src/cli/dev/servers/http-util.js';

export * from '../../src/cli/dev/servers/http-util.js';

/** Header names that must never arrive (cookie, MCP headers, bearer), over every request a server recorded. */
export function leaksOf(server: { readonly requests: readonly RecordedRequest[] }): string[] {
  return server.requests.flatMap((r) => r.leaked);
}
