/**
 * Whoever waits decides whether the process stays alive: a request that joins a background renewal
 * waiting on `Retry-After` keeps the process alive until it settles, and an acquisition whose only
 * caller left does not. The client runs in a child process (test/fixtures/liveness-client.ts) so
 * that its exit is what is observed; the real loopback servers run here.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startStack, type Stack } from './servers/stack.js';

const script = fileURLToPath(new URL('./fixtures/liveness-client.ts', import.meta.url));

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

/** Runs the client script; resolves with its output lines and how long after its last line it exited. */
function runClient(scenario: string, idToken: string): Promise<{ lines: string[]; code: number | null; exitAfterLastLineMs: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, scenario, stack.mcp.url, stack.idp.issuer, stack.idp.clientId, idToken], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let lastLineAt = Date.now();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean));
    lastLineAt = Date.now();
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ lines, code, exitAfterLastLineMs: Date.now() - lastLineAt })));
}

it('a request that joins a background renewal waiting on Retry-After settles before the process exits', async () => {
  let grants = 0;
  // The first grant succeeds; the renewal's first attempt gets 503 + Retry-After: 1, its retry succeeds.
  stack.as.override = (req) => {
    if (req.method !== 'POST') return undefined;
    grants++;
    return grants === 2 ? { status: 503, headers: { 'retry-after': '1' }, body: 'busy' } : undefined;
  };
  const idToken = await stack.idp.mintIdToken({ expiresInSeconds: 7200 });
  const run = await runClient('join-renewal', idToken);
  expect(run.lines).toEqual(['first 200', 'renewing 200', 'joined 200']);
  expect(run.code).toBe(0);
  expect(grants).toBe(3);
}, 30_000);

it('an acquisition whose only caller aborted does not hold the process through a long Retry-After', async () => {
  stack.as.override = (req) => (req.method === 'POST' ? { status: 503, headers: { 'retry-after': '60' }, body: 'busy' } : undefined);
  const idToken = await stack.idp.mintIdToken();
  const run = await runClient('abandon', idToken);
  expect(run.lines).toEqual(['aborted TimeoutError']);
  expect(run.code).toBe(0);
  // Held, it would exit only after the 60 s wait; released, it exits as soon as its sockets close.
  expect(run.exitAfterLastLineMs).toBeLessThan(20_000);
}, 40_000);
