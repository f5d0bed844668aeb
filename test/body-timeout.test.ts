/**
 * `timeout` bounds a token or metadata request as a whole, body included, even when the fetch below
 * the wrapper ignores `signal`: a body that trickles in byte by byte, or never ends, becomes a typed
 * `timeout` error in bounded time. Real loopback servers that send their headers, then one byte of
 * the body every 100 ms, forever.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { withCrossAppAccess, type FetchLike } from '../src/index.js';
import { DEFAULT_AS_CLIENT } from './servers/stack.js';
import { AS_SECRET, idpAt, useErrorStacks } from './helpers/error-stack.js';
import { expectCaaError, initializeRequest } from './helpers/errors.js';

const { setup, counting } = useErrorStacks({ idp: 'tokenEndpoint' });

/** Responses still being written (the client has not closed them). */
let open = 0;

/** Headers at once, then a JSON body one byte per 100 ms that never completes. */
function trickle(res: ServerResponse): Promise<void> {
  open++;
  res.on('close', () => open--);
  res.writeHead(200, { 'content-type': 'application/json' });
  return new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (res.destroyed) {
        clearInterval(timer);
        resolve();
        return;
      }
      res.write(' ');
    }, 100);
    res.on('close', () => {
      clearInterval(timer);
      resolve();
    });
  });
}

describe('timeout: the whole request is bounded, body included, whatever the fetch does with signal', () => {
  it.each([
    ['the IdP token endpoint', 'token_exchange', (url: string) => ({ tokenEndpoint: `${url}/token` })],
    ['the IdP metadata', 'discovery', (url: string) => ({ issuer: url })],
  ] as const)('%s trickling its body forever → timeout/%s within a bounded time', async (_name, stage, where) => {
    const ctx = await setup();
    const slow = await counting((_req, res) => trickle(res));
    // Not the recorder's fetch: its copy of a token response would wait for the endless body too.
    const ignoresSignal: FetchLike = (url, init) => fetch(url, { ...init, signal: null });
    const authedFetch = withCrossAppAccess(ignoresSignal, {
      idToken: ctx.idToken,
      idp: idpAt(ctx, where(slow.url)),
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: AS_SECRET },
      timeout: 400,
      retry: false,
      onEvent: ctx.recorder.onEvent,
    });
    // The body never ends: only the 400 ms timeout can end the request (else the test's own timeout fails it).
    await expectCaaError(authedFetch(ctx.stack.mcp.url, initializeRequest()), { code: 'timeout', stage }, ctx.recorder);
    expect(slow.hits).toHaveLength(1);
    // The body was cancelled: the server saw its response closed.
    await expect.poll(() => open, { timeout: 2_000 }).toBe(0);
  });
});
