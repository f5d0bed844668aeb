/**
 * workerd, under `wrangler dev` (offline: no metrics, no error reports, no update check, no
 * request.cf download; config, logs and state in the work directory): test/runtimes/worker.mjs,
 * bundled by wrangler from the installed package without `nodejs_compat`, runs the flow tests when
 * asked with `POST /run`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startProcess } from './processes.mjs';

/** Waits for wrangler's "Ready on http://127.0.0.1:PORT" line; rejects if it exits first. */
async function readyOrigin(wrangler) {
  for (;;) {
    const ready = /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(wrangler.output());
    if (ready) return ready[1];
    const exited = await Promise.race([wrangler.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))]);
    if (exited) throw new Error(`wrangler dev exited before it was ready:\n${wrangler.output().slice(-2000)}`);
  }
}

/** Polls `url` until it answers 2xx: "Ready on" can come before the Worker is loaded. */
async function untilAnswering(url, wrangler) {
  for (let i = 0; ; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    if (i >= 100) throw new Error(`the Worker did not answer at ${url}:\n${wrangler.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** wrangler (a devDependency of the repository `root`) and the workerd it runs: where, and their versions. */
export function wranglerOf(root) {
  const require = createRequire(join(root, 'package.json'));
  const wranglerDir = dirname(require.resolve('wrangler/package.json'));
  const workerdVersion = JSON.parse(readFileSync(createRequire(join(wranglerDir, 'package.json')).resolve('workerd/package.json'), 'utf8')).version;
  const wranglerVersion = JSON.parse(readFileSync(join(wranglerDir, 'package.json'), 'utf8')).version;
  return { wranglerDir, version: `${workerdVersion} (wrangler ${wranglerVersion})` };
}

/** The environment wrangler runs offline in: no metrics, error reports or request.cf; config and logs in `work`. */
export function offlineWranglerEnv(work) {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_SEND_ERROR_REPORTS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    XDG_CONFIG_HOME: join(work, '.config'),
    WRANGLER_LOG_PATH: join(work, '.wrangler-logs'),
    WRANGLER_REGISTRY_PATH: join(work, '.wrangler-registry'),
    // Non-interactive: no banner, hence no update check.
    CI: 'true',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  };
}

/**
 * Starts `wrangler dev` for `config` on a free loopback port, offline, its config, logs and state
 * in `work`; resolves once the Worker answers `readyPath`. `stop()` ends wrangler and workerd.
 * @param {{ wranglerDir: string, config: string, cwd: string, work: string, readyPath?: string, args?: string[] }} options
 */
export async function startWranglerDev({ wranglerDir, config, cwd, work, readyPath = '/ready', args = [] }) {
  const wrangler = startProcess(process.execPath, [
    join(wranglerDir, 'bin', 'wrangler.js'), 'dev',
    '--config', config,
    '--ip', '127.0.0.1',
    '--port', '0',
    '--inspector-port', '0',
    '--persist-to', join(work, '.wrangler-state'),
    '--show-interactive-dev-session=false',
    '--log-level', 'info',
    ...args,
  ], { cwd, env: offlineWranglerEnv(work) });
  try {
    const origin = await readyOrigin(wrangler);
    await untilAnswering(`${origin}${readyPath}`, wrangler);
    return { origin, output: wrangler.output, stop: wrangler.stop };
  } catch (error) {
    await wrangler.stop();
    throw error;
  }
}

/** @param {string} root the repository (wrangler is one of its devDependencies) */
export function workerdRuntime(root) {
  const { wranglerDir, version } = wranglerOf(root);
  return {
    name: 'workerd',
    prepare: () => ({ version }),
    async run(_, work, config) {
      const wranglerConfig = join(work, 'wrangler.json');
      writeFileSync(wranglerConfig, JSON.stringify({ name: 'cross-app-access-runtimes', main: 'worker.mjs', compatibility_date: '2026-04-01', send_metrics: false }));
      const wrangler = await startWranglerDev({ wranglerDir, config: wranglerConfig, cwd: work, work });
      try {
        const response = await fetch(`${wrangler.origin}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
        const text = await response.text();
        if (!response.ok) throw new Error(`the Worker answered HTTP ${response.status}: ${text.slice(0, 500)}\n${wrangler.output().slice(-2000)}`);
        return JSON.parse(text);
      } finally {
        await wrangler.stop();
      }
    },
  };
}
