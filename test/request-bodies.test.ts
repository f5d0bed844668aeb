/**
 * Request and response bodies: a stream body goes out at once to a server not known to be protected,
 * is replayed after a 401 challenge, is cancelled when the request cannot go (an abort, a failed
 * acquisition past the replay cap), and a 401's response body is released before an error is
 * thrown. Real loopback servers.
 */
import { describe, expect, it, vi } from 'vitest';
import { withCrossAppAccess, type FetchLike } from '../src/index.js';
import { listToolsInit, MCP_HEADERS } from './helpers/stack-options.js';
import { startHttpServer } from './servers/http-util.js';
import { useStack } from './helpers/use-stack.js';

const fixture = useStack();
const options = fixture.options;

describe('requests to servers not known to be protected go out at once', () => {
  it('a stream body is not held back: the server can answer before the stream ends', async () => {
    const server = await startHttpServer((_req, res) => void res.writeHead(200).end('early answer'));
    try {
      const authedFetch = withCrossAppAccess(fetch, options());
      let close!: () => void;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('first chunk'));
          close = () => controller.close();
        },
      });
      // Buffering the body before sending would wait for the stream to end, which only happens after.
      const response = await authedFetch(`${server.url}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('early answer');
      close();
    } finally {
      await server.close();
    }
  }, 5_000);

  it('a stream body to an MCP server not yet learned is replayed after the 401 challenge', async () => {
    const { stack } = fixture;
    const authedFetch = withCrossAppAccess(fetch, options());
    const bytes = new TextEncoder().encode(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 7));
        controller.enqueue(bytes.subarray(7));
        controller.close();
      },
    });
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('whoami');
    expect(stack.mcp.counters.unauthorized).toBe(1);
  });
});

describe('a stream body the request cannot send is cancelled', () => {
  it('a stream body that never ends is given up when the caller aborts', async () => {
    const { stack } = fixture;
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource }));
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull: () => new Promise<void>(() => undefined), // never produces, never ends
      cancel: () => {
        cancelled = true;
      },
    });
    const controller = new AbortController();
    const pending = authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half', signal: controller.signal } as RequestInit);
    const reason = new Error('stop waiting for the body');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(cancelled).toBe(true);
    expect(stack.mcp.counters.requests).toBe(0);
  });

  it('a stream body past the cap is cancelled when the acquisition fails before it was sent', async () => {
    const { stack } = fixture;
    stack.idp.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    const authedFetch = withCrossAppAccess(fetch, options({ resource: stack.mcp.resource, maxReplayBodyBytes: 10, retry: false }));
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('twenty bytes of body'));
      },
      cancel() {
        cancelled = true;
      },
    });
    await expect(authedFetch(stack.mcp.url, { method: 'POST', headers: MCP_HEADERS, body, duplex: 'half' } as RequestInit)).rejects.toMatchObject({ code: 'http_error' });
    await vi.waitFor(() => expect(cancelled).toBe(true));
  });
});

describe('a response body is released', () => {
  it('a 401 whose re-acquisition fails has its body cancelled before the error is thrown', async () => {
    const { stack } = fixture;
    const responses: Response[] = [];
    const recording: FetchLike = async (url, init) => {
      const response = await fetch(url, init);
      if (String(url).startsWith(stack.mcp.url)) responses.push(response);
      return response;
    };
    const authedFetch = withCrossAppAccess(recording, options({ resource: stack.mcp.resource }));
    expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    stack.as.revokeAll();
    stack.idp.override = (req) => (req.method === 'POST' ? { status: 503, body: 'down' } : undefined);
    await expect(authedFetch(stack.mcp.url, listToolsInit(2))).rejects.toMatchObject({ code: 'http_error', stage: 'token_exchange', status: 503 });
    const rejected = responses.at(-1);
    expect(rejected?.status).toBe(401);
    expect(rejected?.bodyUsed).toBe(true); // cancelled, so undici can reuse or close the socket
  });
});
