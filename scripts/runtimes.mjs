/**
 * `npm run test:runtimes`: the packed package's flow tests (test/runtimes/flow.mjs: one user, the
 * engine with two users, failing closed) under Node 20, 22 and 24, Bun, Deno, workerd and headless
 * Chromium, each against its own loopback IdP, authorization server and MCP SDK server.
 *
 * Prints one line per runtime (`bun 1.4.5: 3 passed`), then the failures; exits 1 if any runtime
 * failed. Every process started is ended, whatever happens. XAA_RUNTIMES=bun,deno runs only those.
 * Run with `node --import tsx` (the loopback servers are the TypeScript ones of test/servers/, over src/cli/dev/servers/).
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startStack } from '../test/servers/stack.ts';
import { chromiumRuntime } from './runtimes/chromium.mjs';
import { installPackedPackage } from './runtimes/pack.mjs';
import { stopAll } from './runtimes/processes.mjs';
import { scriptRuntimes } from './runtimes/script-runtimes.mjs';
import { workerdRuntime } from './runtimes/workerd.mjs';

const root = resolve(import.meta.dirname, '..');
/** A safety net against a runtime that hangs, not a measure of speed: a cold Chromium or workerd takes seconds. */
const RUNTIME_DEADLINE_MS = 180_000;

const listed = process.env.XAA_RUNTIMES?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
const only = listed.length > 0 ? listed : undefined;
const runtimes = [...scriptRuntimes(root), workerdRuntime(root), chromiumRuntime()].filter(
  (r) => !only || only.some((name) => r.name === name || r.name.startsWith(`${name} `)),
);
if (runtimes.length === 0) throw new Error(`XAA_RUNTIMES=${process.env.XAA_RUNTIMES} names no runtime`);

/** The servers' addresses, as the flow tests take them. */
function flowConfig(stack, runId) {
  return {
    idpIssuer: stack.idp.issuer,
    idpClientId: stack.idp.clientId,
    idTokenUrl: `${stack.idp.issuer}/dev/id-token`,
    mcpUrl: stack.mcp.url,
    asClientId: 'mcp-client',
    asClientSecret: 'mcp-secret',
    runId,
  };
}

function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${RUNTIME_DEADLINE_MS / 1000} s`)), RUNTIME_DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Runs one runtime's flow tests against a fresh stack: its result line and its failures. */
async function runOne(runtime, work) {
  let label = runtime.name;
  let stack;
  try {
    const prepared = runtime.prepare();
    const listen = runtime.cors ? { cors: true } : {};
    stack = await startStack({ idp: { devIdTokenEndpoint: true, listen }, as: { listen }, mcp: { listen } });
    const results = await withDeadline(runtime.run(prepared, work, flowConfig(stack, runtime.name.replace(/\W+/g, ''))), runtime.name);
    label = `${runtime.name.split(' ')[0]} ${prepared.version ?? '(version unknown)'}`;
    const failed = results.filter((r) => !r.ok);
    const passed = results.length - failed.length;
    const line = `${label}: ${passed} passed${failed.length > 0 ? `, ${failed.length} failed` : ''}`;
    return { line, ok: failed.length === 0 && passed > 0, failures: failed.map((r) => `${label} ✗ ${r.name}\n    ${r.error}`) };
  } catch (error) {
    return { line: `${label}: did not run`, ok: false, failures: [`${label}: ${error instanceof Error ? error.stack : String(error)}`] };
  } finally {
    await stack?.close();
  }
}

const work = mkdtempSync(join(tmpdir(), 'xaa-runtimes-'));
/** Once every process is ended (Chromium writes its profile, inside `work`, until it exits). */
const removeWork = () => rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.log(`${signal}: stopping every process started`);
    void stopAll().then(removeWork).finally(() => process.exit(130));
  });
}
let ok = false;
try {
  const { tarball } = installPackedPackage(root, work);
  console.log(`runtimes: ${tarball}, installed in a temporary project`);
  const outcomes = [];
  for (const runtime of runtimes) {
    const outcome = await runOne(runtime, work);
    console.log(outcome.line);
    outcomes.push(outcome);
  }
  const failures = outcomes.flatMap((o) => o.failures);
  if (failures.length > 0) console.log(`\n${failures.join('\n\n')}`);
  ok = outcomes.every((o) => o.ok);
} finally {
  await stopAll();
  await removeWork();
}
process.exitCode = ok ? 0 : 1;
