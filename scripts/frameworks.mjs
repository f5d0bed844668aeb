/**
 * `npm run test:frameworks`: the framework examples of examples/frameworks/ (Vercel AI SDK, Mastra,
 * LangChain.js, Cloudflare Agents) against `cross-app-access dev`, with the package as users get it.
 *
 * 1. `npm pack` (its prepare builds dist/) into examples/frameworks/cross-app-access.tgz, then
 *    `npm ci` there: the frameworks stay out of the root lockfile.
 * 2. `tsc` over the examples, against the framework versions installed.
 * 3. `cross-app-access dev` (the installed package's CLI) on free loopback ports.
 * 4. Each example with the Node it needs (the pinned Node 22 of test/runtimes/nodes/ for the AI SDK
 *    and Mastra), the Cloudflare Agent under `wrangler dev`; each one's output must show the tool's
 *    answer for the right user.
 *
 * Prints one line per framework, then the failures; exits 1 if any failed. Every process started is
 * ended, whatever happens. XAA_FRAMEWORKS=mastra,langchain runs only those.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runProcess, startProcess, stopAll, withDeadline, workDirectory } from './runtimes/processes.mjs';
import { pinnedNode } from './runtimes/script-runtimes.mjs';
import { offlineWranglerEnv, startWranglerDev, wranglerOf } from './runtimes/workerd.mjs';

const root = resolve(import.meta.dirname, '..');
const folder = join(root, 'examples', 'frameworks');
/** A safety net against a hang, not a measure of speed. */
const DEADLINE_MS = 120_000;

/** Runs a command to its end; if it fails, its output (tsc writes its errors to stdout) is in the error. */
function run(cmd, args, cwd, env = process.env) {
  try {
    return execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    throw new Error(`${[cmd, ...args].join(' ')} failed:\n${String(error.stdout ?? '').slice(-3000)}${String(error.stderr ?? '').slice(-3000)}`);
  }
}
const versionOf = (name) => JSON.parse(readFileSync(join(folder, 'node_modules', name, 'package.json'), 'utf8')).version;
const versions = (...names) => names.map((n) => `${n} ${versionOf(n)}`).join(', ');

/** Packs the repository into the folder and installs it with `npm ci`; checks that the build installed is this one. */
function install() {
  const lock = JSON.parse(readFileSync(join(folder, 'package-lock.json'), 'utf8'));
  // With an integrity, npm ci would install the cached tarball of that hash, not the one just packed.
  if (lock.packages['node_modules/cross-app-access']?.integrity !== undefined) {
    throw new Error('examples/frameworks/package-lock.json pins the integrity of cross-app-access.tgz: delete that "integrity" line (the tarball is rebuilt at every run)');
  }
  const out = run('npm', ['pack', '--json', '--pack-destination', folder], root);
  // `npm pack --json`'s report; the prepare script's own output, if any, comes before it.
  const packed = JSON.parse(out.slice(out.search(/^\[/m)))[0];
  renameSync(join(folder, packed.filename), join(folder, 'cross-app-access.tgz'));
  run('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'], folder);
  const installed = readFileSync(join(folder, 'node_modules', 'cross-app-access', 'dist', 'index.js'), 'utf8');
  if (installed !== readFileSync(join(root, 'dist', 'index.js'), 'utf8')) throw new Error('the installed cross-app-access is not the build just packed');
  return packed.filename;
}

/** Starts the installed package's `cross-app-access dev`; its `XAA_…` variables once it listens. */
async function startDev() {
  const dev = startProcess(process.execPath, [join(folder, 'node_modules', 'cross-app-access', 'dist', 'cli.js'), 'dev'], { cwd: folder });
  for (let i = 0; ; i++) {
    const env = Object.fromEntries([...dev.output().matchAll(/^export (XAA_[A-Z_]+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
    if (env.XAA_ID_TOKEN) return { env, output: dev.output, stop: dev.stop };
    if (i >= 300) {
      await dev.stop();
      throw new Error(`cross-app-access dev printed no XAA_ID_TOKEN:\n${dev.output().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs examples/frameworks/<file> under `node` (TypeScript through the folder's tsx) with the dev variables. */
async function runExample(node, file, env) {
  // The file by its full path, so that a process left running would be found by it (.ci/run looks).
  const { code, output } = await runProcess(node, ['--import', 'tsx', join(folder, file)], { cwd: folder, env: { ...process.env, ...env } });
  if (code !== 0) throw new Error(`${file} exited with code ${code}:\n${output.slice(-3000)}`);
  return output;
}

/** `pattern`'s match in `output`, or an error showing the output. */
function expectLine(output, pattern, what) {
  const match = pattern.exec(output);
  if (!match) throw new Error(`${what}: no line matching ${pattern} in:\n${output.slice(-3000)}`);
  return match[0];
}

/** The answer of the dev MCP server's `whoami` for `user`. */
const whoami = (user) => new RegExp(`sub=${user} scopes=\\S* idp=http://127\\.0\\.0\\.1:\\d+`);

/** An example for one user (alice) under Node `major`: it lists the tools, then prints whoami's answer. */
const oneUser = (name, major, packages, file) => ({
  name,
  node: major,
  packages,
  async run({ node, env }) {
    const out = await runExample(node, file, env);
    expectLine(out, /^tools: whoami, echo$/m, name);
    return expectLine(out, new RegExp(`^whoami: ${whoami('alice').source}$`, 'm'), name);
  },
});

const frameworks = [
  oneUser('ai-sdk', 22, ['ai', '@ai-sdk/mcp'], 'ai-sdk.ts'),
  {
    name: 'mastra',
    node: 22,
    packages: ['@mastra/core', '@mastra/mcp'],
    async run({ node, env }) {
      const out = await runExample(node, 'mastra.ts', env);
      expectLine(out, /^tools: dev_whoami, dev_echo$/m, 'mastra');
      // The tool call failed closed before anything was sent; the model is told why.
      expectLine(out, /^bob's call on alice's client: error: No user could be resolved for a request to a protected resource; it was not sent\./m, 'mastra');
      const bob = expectLine(out, new RegExp(`^bob whoami: ${whoami('bob').source}$`, 'm'), 'mastra');
      const alice = expectLine(out, new RegExp(`^alice whoami: ${whoami('alice').source}$`, 'm'), 'mastra');
      // The other shape: xaa.authProvider(...) as the server's authProvider.
      const withProvider = await runExample(node, 'mastra-auth-provider.ts', env);
      expectLine(withProvider, /^tools: dev_whoami, dev_echo$/m, 'mastra-auth-provider');
      const carol = expectLine(withProvider, new RegExp(`^carol whoami: ${whoami('carol').source}$`, 'm'), 'mastra-auth-provider');
      return `${alice}; ${bob}; ${carol} (authProvider)`;
    },
  },
  oneUser('langchain', 20, ['@langchain/core', '@langchain/mcp-adapters'], 'langchain.ts'),
  {
    name: 'cloudflare-agents',
    packages: ['agents'],
    runtime: () => ({ version: `workerd ${wranglerOf(root).version}` }),
    async run({ env, work, devLog }) {
      // The dev variables as an env file (a client secret has no place on a command line).
      const envFile = join(work, 'agent.env');
      const names = ['XAA_MCP_URL', 'XAA_IDP_ISSUER', 'XAA_IDP_CLIENT_ID', 'XAA_ID_TOKEN_URL', 'XAA_CLIENT_ID', 'XAA_CLIENT_SECRET'];
      writeFileSync(envFile, names.map((n) => `${n}=${env[n]}\n`).join(''), { mode: 0o600 });
      const { wranglerDir } = wranglerOf(root);
      const wrangler = await startWranglerDev({ wranglerDir, config: join(folder, 'wrangler.jsonc'), cwd: folder, work, readyPath: '/', args: ['--env-file', envFile] });
      try {
        const ask = async (user) => {
          const response = await fetch(`${wrangler.origin}/whoami?user=${user}`);
          const text = await response.text();
          if (!response.ok) throw new Error(`the Agent of ${user} answered HTTP ${response.status}: ${text.slice(0, 1000)}\n${wrangler.output().slice(-3000)}`);
          const { tools, whoami: answer } = JSON.parse(text);
          if (tools.join(', ') !== 'whoami, echo') throw new Error(`the Agent of ${user} listed ${tools.join(', ')}`);
          return expectLine(answer, whoami(user), `the Agent of ${user}`);
        };
        const [alice, bob] = await Promise.all([ask('alice'), ask('bob')]);
        // Again: alice's Agent reuses her MCP session (dev's request log: a tools/call, no new initialize).
        const before = devLog().length;
        await ask('alice');
        // dev's log line reaches this process through a pipe, possibly after the Agent's answer.
        for (let i = 0; i < 50 && !/rpc=tools\/call/.test(devLog().slice(before)); i++) await new Promise((r) => setTimeout(r, 100));
        const after = devLog().slice(before);
        if (/rpc=initialize/.test(after) || !/rpc=tools\/call/.test(after)) throw new Error(`alice's second request did not reuse her MCP session:\n${after}`);
        return `alice: ${alice}; bob: ${bob}; alice again on her session`;
      } finally {
        await wrangler.stop();
      }
    },
  },
];

/** This process's Node (20) or the pinned one of test/runtimes/nodes/. */
function nodeOf(major) {
  const node = major === 20 ? { file: process.execPath, version: process.versions.node } : pinnedNode(root, major);
  return { file: node.file, version: `node ${node.version}` };
}

const listed = process.env.XAA_FRAMEWORKS?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
const selected = frameworks.filter((f) => listed.length === 0 || listed.includes(f.name));
if (selected.length === 0) throw new Error(`XAA_FRAMEWORKS=${process.env.XAA_FRAMEWORKS} names no framework (${frameworks.map((f) => f.name).join(', ')})`);

const { path: work, remove: removeWork } = workDirectory('xaa-frameworks-');

let ok = false;
try {
  const tarball = install();
  const tsc = (project) => run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], root);
  tsc(folder);
  // The Worker against the Workers runtime types, made by `wrangler types` (as Cloudflare's docs say).
  run(process.execPath, [join(wranglerOf(root).wranglerDir, 'bin', 'wrangler.js'), 'types', '--config', 'wrangler.jsonc'], folder, offlineWranglerEnv(work));
  tsc(join(folder, 'tsconfig.worker.json'));
  console.log(`frameworks: ${tarball} installed in examples/frameworks (npm ci), examples typechecked`);
  const dev = await startDev();
  const failures = [];
  for (const framework of selected) {
    const runtime = framework.runtime?.() ?? nodeOf(framework.node);
    const label = `${framework.name} (${versions(...framework.packages)}; ${runtime.version})`;
    try {
      const line = await withDeadline(framework.run({ node: runtime.file, env: dev.env, work, devLog: dev.output }), DEADLINE_MS, framework.name);
      console.log(`${label}: ${line}`);
    } catch (error) {
      console.log(`${label}: FAILED`);
      failures.push(`${framework.name}: ${error instanceof Error ? error.stack : String(error)}`);
    }
  }
  await dev.stop();
  if (failures.length > 0) console.log(`\n${failures.join('\n\n')}`);
  ok = failures.length === 0;
} finally {
  await stopAll();
  await removeWork();
}
process.exitCode = ok ? 0 : 1;
