/**
 * The loopback servers' opt-in `cors` listen option, which lets the Chromium runtime test's page (on
 * its own loopback origin) call the IdP, the authorization server and the MCP server. Off by default.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../servers/stack.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const PAGE = 'http://127.0.0.1:9';

/** A CORS preflight (Fetch standard §4.8) for a POST with these headers. */
const preflight = (url: string, headers: string) =>
  fetch(url, { method: 'OPTIONS', headers: { origin: PAGE, 'access-control-request-method': 'POST', 'access-control-request-headers': headers } });

describe('cors listen option', () => {
  it('off by default: no Access-Control-* header, and a preflight reaches the server like any request', async () => {
    stack = await startStack();
    const answer = await fetch(stack.mcp.url, { method: 'POST', headers: { origin: PAGE } });
    expect(answer.status).toBe(401);
    expect([...answer.headers.keys()].filter((name) => name.startsWith('access-control-'))).toEqual([]);
    const refused = await preflight(stack.mcp.url, 'authorization');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(stack.mcp.counters.requests).toBe(2);
  });

  it('on: preflights are answered without reaching the server (names echoed: `*` never covers Authorization)', async () => {
    const listen = { cors: true };
    stack = await startStack({ idp: { listen }, as: { listen }, mcp: { listen } });
    for (const url of [stack.mcp.url, stack.as.tokenEndpoint, stack.idp.tokenEndpoint]) {
      const answer = await preflight(url, 'authorization,content-type');
      expect(answer.status).toBe(204);
      expect(answer.headers.get('access-control-allow-origin')).toBe('*');
      expect(answer.headers.get('access-control-allow-methods')).toBe('POST');
      expect(answer.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
      expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    }
    expect(stack.mcp.requests).toEqual([]);
    expect(stack.as.requests).toEqual([]);
    expect(stack.idp.requests).toEqual([]);
  });

  it("on: every answer allows any origin and exposes its headers (the 401's WWW-Authenticate)", async () => {
    const listen = { cors: true };
    stack = await startStack({ mcp: { listen } });
    const answer = await fetch(stack.mcp.url, { method: 'POST', headers: { origin: PAGE } });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toContain('resource_metadata=');
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-expose-headers')).toBe('*');
    expect(stack.mcp.counters.requests).toBe(1);
  });
});
