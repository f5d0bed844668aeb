/**
 * How the wrapper reads the caller's request, against real loopback servers: the
 * caller's `URL` is read once (changing it later cannot move the request or its token), and a
 * `Request` with an `init` is merged exactly as plain fetch merges them (plain fetch is the oracle).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { withCrossAppAccess, type CrossAppAccessOptions } from '../src/index.js';
import { startProtectedResource, startRecorder, type Hit, type ProtectedResource, type Recorder } from './helpers/redirect-servers.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { startStack, type Stack } from './servers/stack.js';
import { MCP_HEADERS } from './helpers/stack-options.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()));
});

async function stackAndAttacker(): Promise<{ stack: Stack; attacker: Recorder }> {
  const stack = await startStack();
  open.push(stack);
  const attacker = await startRecorder();
  open.push(attacker);
  return { stack, attacker };
}

describe('the caller\'s URL object is read once', () => {
  type Change = (url: URL, attacker: Recorder) => void;
  const changes: [string, Change][] = [
    ['host and path to another origin', (url, attacker) => {
      url.host = attacker.host;
      url.pathname = '/steal';
    }],
    ['path only, out of the resource on the same origin', (url) => {
      url.pathname = '/admin/collect';
    }],
  ];
  const paths: [string, (stack: Stack) => Partial<CrossAppAccessOptions>][] = [
    ['cold path (resource set: acquisition before the request)', (stack) => ({ resource: stack.mcp.resource })],
    ['probe path (no resource: 401, acquisition, replay)', () => ({})],
  ];
  const moments = ['synchronously after the call', 'from inside the idToken callback'] as const;

  for (const [pathName, extra] of paths) {
    for (const moment of moments) {
      for (const [changeName, change] of changes) {
        it(`${pathName}: ${changeName}, ${moment}: token and request go only to the original URL`, async () => {
          const { stack, attacker } = await stackAndAttacker();
          const url = new URL(stack.mcp.url);
          let changed = false;
          const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, {
            ...extra(stack),
            idToken: async () => {
              if (moment === 'from inside the idToken callback') {
                change(url, attacker);
                changed = true;
              }
              return stack.idp.mintIdToken();
            },
          }));
          const pending = authedFetch(url, listToolsInit());
          if (moment === 'synchronously after the call') {
            change(url, attacker);
            changed = true;
          }
          const response = await pending;
          expect(changed).toBe(true);
          expect(url.href).not.toBe(stack.mcp.url);
          expect(response.status).toBe(200);
          expect(attacker.hits).toEqual([]);
          expect(stack.mcp.counters.authorized).toBe(1);
          // Only /mcp (and the metadata) was asked for; nothing with a token went anywhere else.
          expect(stack.mcp.requests.filter((r) => r.authorization !== undefined).map((r) => r.path)).toEqual(['/mcp']);
          expect(stack.mcp.requests.filter((r) => r.path === '/admin/collect')).toEqual([]);
        });
      }
    }
  }
});

describe('a Request with an init is merged as plain fetch merges it', () => {
  const text = new TextEncoder();
  const requestBodies: [string, (url: string) => Request][] = [
    ['none (GET)', (url) => new Request(url)],
    ['none (POST)', (url) => new Request(url, { method: 'POST' })],
    ['string', (url) => new Request(url, { method: 'POST', body: 'request-string \u00fc' })],
    ['Uint8Array', (url) => new Request(url, { method: 'POST', body: new Uint8Array([0, 1, 2, 0x80, 0xfe, 0xff]) })],
    ['ReadableStream', (url) => new Request(url, {
      method: 'POST',
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(text.encode('stream-'));
          controller.enqueue(text.encode('body'));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit)],
  ];
  const inits: [string, RequestInit | undefined][] = [
    ['absent', undefined],
    ['{}', {}],
    ['{ body: undefined }', { body: undefined }],
    ['{ body: null }', { body: null }],
    ["{ body: 'init-string' }", { body: 'init-string' }],
    ["{ method: 'PUT' }", { method: 'PUT' }],
    ["{ method: 'GET' }", { method: 'GET' }],
  ];

  let server: ProtectedResource;
  async function setUp() {
    const stack = await startStack();
    open.push(stack);
    server = await startProtectedResource(stack);
    open.push(server);
    return withCrossAppAccess(fetch, stackOptions(stack, { resource: server.resource }));
  }
  const seen = (hit: Hit) => ({ method: hit.method, bytes: [...hit.bytes], contentType: hit.headers['content-type'] });
  const callsToResource = () => server.at('/mcp');

  for (const [bodyName, makeRequest] of requestBodies) {
    for (const [initName, init] of inits) {
      it(`Request body ${bodyName} × init ${initName}`, async () => {
        const authedFetch = await setUp();
        const url = server.resource;
        let constructs = true;
        try {
          new Request(makeRequest(url), init);
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
          constructs = false;
        }

        if (!constructs) {
          // Impossible as a fetch call too: both reject with a TypeError, and nothing is sent.
          await expect(fetch(makeRequest(url), init)).rejects.toBeInstanceOf(TypeError);
          const request = makeRequest(url);
          await expect(authedFetch(request, init)).rejects.toBeInstanceOf(TypeError);
          expect(request.bodyUsed).toBe(false);
          expect(callsToResource()).toEqual([]);
          return;
        }

        // The oracle: plain fetch (the resource answers it 401, but records what arrived).
        await (await fetch(makeRequest(url), init)).arrayBuffer();
        const [expected, ...extraPlain] = callsToResource().splice(0);
        expect(extraPlain).toEqual([]);
        expect(expected!.authorization).toBeUndefined();
        server.hits.length = 0;

        const request = makeRequest(url);
        const response = await authedFetch(request, init);
        expect(response.status).toBe(200);
        await response.arrayBuffer();
        // The caller's Request is not used: its body can still be read.
        expect(request.bodyUsed).toBe(false);
        const [actual, ...extraWrapped] = callsToResource();
        expect(extraWrapped).toEqual([]);
        expect(actual!.authorization).toMatch(/^Bearer /);
        expect(seen(actual!)).toEqual(seen(expected!));
      });
    }
  }
});

describe('the caller’s headers', () => {
  const forms: Array<[string, () => HeadersInit]> = [
    ['a plain object with a mixed-case Authorization', () => ({ ...MCP_HEADERS, Authorization: 'Basic c2VjcmV0', 'x-keep': 'kept' })],
    ['pairs', () => [...Object.entries(MCP_HEADERS), ['AUTHORIZATION', 'Basic c2VjcmV0'], ['x-keep', 'kept']] as [string, string][]],
    ['a Headers object', () => new Headers({ ...MCP_HEADERS, authorization: 'Basic c2VjcmV0', 'x-keep': 'kept' })],
  ];

  it.each(forms)('%s: our Bearer replaces the caller’s Authorization, the rest is sent, and the caller’s headers are untouched', async (_name, make) => {
    const stack = await startStack();
    open.push(stack);
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    const headers = make();
    const before = JSON.stringify(headers instanceof Headers ? [...headers] : headers);
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) });
    expect(response.status).toBe(200);
    const seen = stack.mcp.requests.at(-1);
    expect(seen?.authorization).toMatch(/^Bearer [\w-]+$/);
    expect(seen?.headers['x-keep']).toBe('kept');
    expect(JSON.stringify(headers instanceof Headers ? [...headers] : headers)).toBe(before);
  });
});

describe('headers from another library', () => {
  it('headers given as a Map (or another library’s Headers) are all sent, with our Bearer', async () => {
    const stack = await startStack();
    open.push(stack);
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    const headers = new Map(Object.entries({ ...MCP_HEADERS, 'x-keep': 'kept', authorization: 'Basic c2VjcmV0' }));
    const response = await authedFetch(stack.mcp.url, { method: 'POST', headers: headers as unknown as HeadersInit, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) });
    expect(response.status).toBe(200);
    const seen = stack.mcp.requests.at(-1);
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers['x-keep']).toBe('kept');
    expect(seen?.authorization).toMatch(/^Bearer /);
  });
});
