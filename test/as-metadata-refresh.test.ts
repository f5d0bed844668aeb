/**
 * Authorization-server metadata is read through the discovery cache at every acquisition (an hour,
 * RFC 8414 §3 metadata may change), not captured for the wrapper's life: after the AS moves its token
 * endpoint, a token request that fails as if it moved (404/405/410, a redirect, no connection) drops
 * the cached metadata, so the next acquisition discovers the new endpoint; and past the hour, the
 * metadata is read again anyway. The real loopback AS moves its token endpoint (moveTokenEndpoint).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess } from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { startStack, type Stack } from './servers/stack.js';

const HOUR = 3600_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

async function stack(): Promise<Stack> {
  const started = await startStack();
  cleanups.push(() => started.close());
  return started;
}

function tokenPosts(s: Stack): string[] {
  return s.as.requests.filter((r) => r.method === 'POST').map((r) => r.path);
}

describe('RFC 8414 §3: AS metadata is re-read, not kept for the life of the wrapper', () => {
  it.each([
    ['answers 404', (_s: Stack) => undefined],
    ['redirects (308) to the new one', (s: Stack) => {
      s.as.override = (req) => (req.method === 'POST' && req.path === '/token' ? { status: 308, headers: { location: s.as.tokenEndpoint }, body: '' } : undefined);
    }],
  ])('the old token endpoint %s: that acquisition fails, the next one in the same wrapper discovers the new endpoint', async (_name, oldPath) => {
    const s = await stack();
    const authedFetch = withCrossAppAccess(fetch, stackOptions(s, { retry: false }));
    expect((await authedFetch(s.mcp.url, listToolsInit(1))).status).toBe(200);
    const metadataReads = s.as.counters.metadata;

    s.as.moveTokenEndpoint('/v2/token');
    oldPath(s);
    s.as.revokeAll(); // the MCP server now answers 401: a new token is needed
    const failed = await authedFetch(s.mcp.url, listToolsInit(2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(CrossAppAccessError);
    expect((failed as CrossAppAccessError).stage).toBe('jwt_bearer');

    expect((await authedFetch(s.mcp.url, listToolsInit(3))).status).toBe(200);
    expect(tokenPosts(s)).toEqual(['/token', '/token', '/v2/token']);
    expect(s.as.counters.metadata).toBe(metadataReads + 1);
  });

  it('past the metadata TTL (an hour, by the `now` clock), an acquisition uses the moved endpoint with no failure first', async () => {
    const s = await stack();
    let clock = Date.now();
    const authedFetch = withCrossAppAccess(
      fetch,
      stackOptions(s, { now: () => clock, idToken: () => s.idp.mintIdToken({ expiresInSeconds: 3 * 3600 }) }),
    );
    expect((await authedFetch(s.mcp.url, listToolsInit(1))).status).toBe(200);
    const metadataReads = s.as.counters.metadata;

    s.as.moveTokenEndpoint('/v2/token');
    clock += HOUR + 60_000; // the access token (3600 s) and the cached metadata have both expired
    expect((await authedFetch(s.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(tokenPosts(s)).toEqual(['/token', '/v2/token']);
    expect(s.as.counters.metadata).toBe(metadataReads + 1);
  });

  it('past the hour, metadata that cannot be read for a transient reason (503): the earlier copy is used, with a diagnostic', async () => {
    const s = await stack();
    let clock = Date.now();
    const diagnostics: string[] = [];
    const authedFetch = withCrossAppAccess(
      fetch,
      stackOptions(s, {
        now: () => clock,
        retry: { baseDelay: 5 },
        idToken: () => s.idp.mintIdToken({ expiresInSeconds: 3 * 3600 }),
        onEvent: (e) => {
          if (e.type === 'diagnostic') diagnostics.push(e.message);
        },
      }),
    );
    expect((await authedFetch(s.mcp.url, listToolsInit(1))).status).toBe(200);
    s.as.override = (req) => (req.method === 'GET' && req.path.startsWith('/.well-known/') ? { status: 503, body: '' } : undefined);
    clock += HOUR + 60_000;
    expect((await authedFetch(s.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(tokenPosts(s)).toEqual(['/token', '/token']);
    expect(diagnostics.some((m) => m.includes('could not be read again (http_error)'))).toBe(true);
  });

  it('within the hour, the cached metadata is used: no metadata request per acquisition', async () => {
    const s = await stack();
    const authedFetch = withCrossAppAccess(fetch, stackOptions(s));
    expect((await authedFetch(s.mcp.url, listToolsInit(1))).status).toBe(200);
    const metadataReads = s.as.counters.metadata;
    s.as.revokeAll();
    expect((await authedFetch(s.mcp.url, listToolsInit(2))).status).toBe(200);
    expect(tokenPosts(s)).toEqual(['/token', '/token']);
    expect(s.as.counters.metadata).toBe(metadataReads);
  });
});
