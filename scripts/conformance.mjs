// Runs the official MCP conformance suite's Enterprise-Managed Authorization client scenario (and,
// in 0.2, its workload identity scenario) against examples/conformance-client.mjs (the package's public API under a real MCP SDK transport),
// once per pinned suite version. `npm run conformance` builds dist/ first, then runs this.
//
//   node scripts/conformance.mjs [--client "<command>"] [--only 0.1.16|0.2.0-alpha.12] [--verbose]
//
// --client (or CONFORMANCE_CLIENT) swaps the client command, to test this harness itself.
// Exit code 0 only if every run printed "OVERALL: PASSED" with all checks passed, 0 failed,
// 0 warnings, no FAILURE/WARNING anywhere in its output or checks.json, and the CLI exited 0.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The scenario already records a FAILURE when either grant is missing; requiring these SUCCESS
// checks here too guards against a suite change that would make an empty run look green.
const USER_FLOW_CHECKS = ['complete-flow-token-exchange', 'complete-flow-jwt-bearer', 'valid-bearer-token'];
// Workload identity (SEP-1933): the platform JWT verified at the AS, and the token it bought accepted.
const WORKLOAD_CHECKS = ['wif-assertion-verified', 'valid-bearer-token'];
// Same checks in both versions; the scenario was renamed in the 0.2 alphas. The workload identity
// scenario exists only in the 0.2 alphas.
const RUNS = [
  { version: '0.1.16', pkg: 'conformance-0-1', scenario: 'auth/cross-app-access-complete-flow', required: USER_FLOW_CHECKS },
  { version: '0.2.0-alpha.12', pkg: 'conformance-0-2', scenario: 'auth/enterprise-managed-authorization', required: USER_FLOW_CHECKS },
  { version: '0.2.0-alpha.12', pkg: 'conformance-0-2', scenario: 'auth/wif-jwt-bearer', required: WORKLOAD_CHECKS },
];
const TIMEOUT_MS = 30_000; // per client run, enforced by the runner
const HARD_LIMIT_MS = TIMEOUT_MS + 60_000; // our own backstop in case the CLI itself hangs

const { values: args } = parseArgs({
  options: {
    client: { type: 'string' },
    only: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});

// POSIX single-quoting. The runner splits --command on spaces and re-joins it with spaces under
// `sh -c`, so quoting survives as long as it is plain shell syntax.
const sq = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);
// `exec` makes sh replace itself with node, so the runner's timeout kill (SIGTERM to its child)
// reaches the client instead of orphaning it with the output pipes still open.
const clientCommand =
  args.client ??
  process.env.CONFORMANCE_CLIENT ??
  `exec ${sq(process.execPath)} ${sq(path.join(root, 'examples', 'conformance-client.mjs'))}`;

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function preflight() {
  const problems = [];
  if (!args.client && !process.env.CONFORMANCE_CLIENT && !existsSync(path.join(root, 'dist', 'index.js'))) {
    problems.push('dist/index.js is missing: run `npm run build` (or `npm run conformance`) first');
  }
  for (const run of RUNS) {
    const pj = path.join(root, 'node_modules', run.pkg, 'package.json');
    if (!existsSync(pj)) {
      problems.push(`node_modules/${run.pkg} is missing: run \`npm install\``);
      continue;
    }
    const { name, version } = JSON.parse(readFileSync(pj, 'utf8'));
    if (name !== '@modelcontextprotocol/conformance' || version !== run.version) {
      problems.push(`node_modules/${run.pkg} is ${name}@${version}, expected @modelcontextprotocol/conformance@${run.version}`);
    }
  }
  return problems;
}

let current = null; // the running CLI, so an interrupted harness does not leave it behind
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (current) {
      try {
        process.kill(-current.pid, 'SIGKILL');
      } catch {}
    }
    process.exit(130);
  });
}

function runCli(run, outDir) {
  const cli = path.join(root, 'node_modules', run.pkg, 'dist', 'index.js');
  // --import goes in execArgv, not NODE_OPTIONS, so the fs hook stays in the CLI process; the
  // client the runner spawns (sh -c …) runs on plain node.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const argv = [
    '--import', path.join(root, 'scripts', 'conformance-register.mjs'),
    cli, 'client',
    '--command', clientCommand,
    '--scenario', run.scenario,
    '--timeout', String(TIMEOUT_MS),
    '-o', outDir,
  ];
  return new Promise((resolve) => {
    // Own process group, so the backstop below can take down the CLI and anything it started.
    const child = spawn(process.execPath, argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    current = child;
    let out = '';
    const onData = (chunk) => {
      out += chunk;
      if (args.verbose) process.stderr.write(chunk);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, HARD_LIMIT_MS);
    child.on('error', (err) => {
      out += `\n[harness] failed to start the CLI: ${err.message}\n`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      resolve({ code, signal, killed, output: stripAnsi(out) });
    });
  });
}

function judge(run, result) {
  const reasons = [];
  const { output } = result;
  if (result.killed) reasons.push(`CLI did not finish within ${HARD_LIMIT_MS / 1000}s and was killed`);
  else if (result.code !== 0) reasons.push(`CLI exited with ${result.code ?? result.signal}`);

  const m = output.match(/Passed: (\d+)\/(\d+), (\d+) failed, (\d+) warnings/);
  const counts = m ? { passed: +m[1], total: +m[2], failed: +m[3], warnings: +m[4] } : null;
  if (!counts) reasons.push('no "Passed: x/y, n failed, n warnings" line');
  else {
    if (counts.failed !== 0) reasons.push(`${counts.failed} failed`);
    if (counts.warnings !== 0) reasons.push(`${counts.warnings} warnings`);
    if (counts.total === 0 || counts.passed !== counts.total) reasons.push(`passed ${counts.passed}/${counts.total}`);
  }
  if (!/OVERALL: PASSED/.test(output)) reasons.push('no "OVERALL: PASSED" line');
  if (/\bFAILURE\b/.test(output)) reasons.push('output contains FAILURE');
  if (/\bWARNING\b/.test(output)) reasons.push('output contains WARNING');
  if (/SKIPPED/.test(output)) reasons.push('scenario was skipped');
  if (/CLIENT TIMED OUT/.test(output)) reasons.push(`client timed out (runner --timeout ${TIMEOUT_MS} ms)`);
  const exited = output.match(/Client exited with code (-?\d+)/);
  if (exited) reasons.push(`client exited with code ${exited[1]}`);

  // checks.json is the structured record of the same run; judge it too.
  const saved = output.match(/Results saved to (.+)/);
  const resultDir = saved ? saved[1].trim() : null;
  let checks = null;
  if (!resultDir || !existsSync(path.join(resultDir, 'checks.json'))) reasons.push('no checks.json written');
  else {
    checks = JSON.parse(readFileSync(path.join(resultDir, 'checks.json'), 'utf8'));
    const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
    if (bad.length) reasons.push(`checks.json has ${bad.length} FAILURE/WARNING check(s)`);
    for (const id of run.required) {
      if (!checks.some((c) => c.id === id && c.status === 'SUCCESS')) reasons.push(`no SUCCESS check "${id}"`);
    }
  }
  return { ok: reasons.length === 0, reasons, counts, resultDir, checks };
}

function report(run, verdict, result, seconds) {
  const c = verdict.counts;
  const tally = c ? `${c.passed}/${c.total} passed, ${c.failed} failed, ${c.warnings} warnings` : 'no result line';
  const where = verdict.resultDir ? path.relative(root, verdict.resultDir) : '-';
  console.log(
    `${verdict.ok ? 'PASS' : 'FAIL'}  ${run.scenario} @ conformance ${run.version}: ${tally} (${seconds.toFixed(1)}s) -> ${where}`,
  );
  if (verdict.ok) return;
  for (const r of verdict.reasons) console.log(`      - ${r}`);
  for (const chk of verdict.checks ?? []) {
    if (chk.status !== 'FAILURE' && chk.status !== 'WARNING') continue;
    console.log(`      ${chk.status} [${chk.id}] ${chk.description}${chk.errorMessage ? `: ${chk.errorMessage}` : ''}`);
    if (chk.details) console.log(`        details: ${JSON.stringify(chk.details)}`);
  }
  if (!args.verbose) {
    // The runner's own report (it includes the client's stdout/stderr when the client failed).
    const tail = result.output.trimEnd().split('\n').slice(-40).join('\n');
    console.log(`      --- last lines of the runner output ---\n${tail.replace(/^/gm, '      | ')}`);
  }
}

const problems = preflight();
if (problems.length) {
  for (const p of problems) console.error(`conformance: ${p}`);
  process.exit(2);
}

const selected = args.only ? RUNS.filter((r) => r.version === args.only) : RUNS;
if (!selected.length) {
  console.error(`conformance: --only must be one of ${RUNS.map((r) => r.version).join(', ')}`);
  process.exit(2);
}

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
let failures = 0;
for (const run of selected) {
  // The CLI adds `<scenario>-<timestamp>/` below this directory.
  const outDir = path.join(root, '.conformance', stamp, run.version, run.scenario.replaceAll('/', '_'));
  mkdirSync(outDir, { recursive: true });
  const started = performance.now();
  const result = await runCli(run, outDir);
  const seconds = (performance.now() - started) / 1000;
  const verdict = judge(run, result);
  report(run, verdict, result, seconds);
  if (!verdict.ok) failures++;
}

console.log(failures ? `conformance: ${failures} of ${selected.length} run(s) FAILED` : `conformance: all ${selected.length} run(s) passed`);
process.exit(failures ? 1 : 0);
