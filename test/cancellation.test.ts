/**
 * A caller's abort: an already-aborted signal rejects at once with its reason, and work the call
 * shared with others (a discovery) that fails after the caller left is no unhandled rejection. Real
 * loopback servers.
 */
import { describe, expect, it } from 'vitest';
import { withCrossAppAccess } from '../src/index.js';
import { listToolsInit } from './helpers/stack-options.js';
import { unhandledRejectionsDuring } from './helpers/unhandled.js';
import { useStack } from './helpers/use-stack.js';

const fixture = useStack();
const options = fixture.options;

describe('a caller that aborts', () => {
  it('an already-aborted signal rejects at once, and a shared discovery that fails later is not an unhandled rejection', async () => {
    const { stack } = fixture;
    const authedFetch = withCrossAppAccess(fetch, options({
      resource: stack.mcp.resource,
      // An AS that does not exist: its metadata request fails after the caller has left.
      client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: 'http://127.0.0.1:1' },
    }));
    const reason = new Error('already gone');
    const unhandled = await unhandledRejectionsDuring(async () => {
      await expect(authedFetch(stack.mcp.url, { ...listToolsInit(), signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      // The same discovery, awaited by a caller that stays, fails with a typed error.
      await expect(authedFetch(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'network_error', stage: 'discovery' });
    });
    expect(unhandled).toEqual([]);
  });
});
