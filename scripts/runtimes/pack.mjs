/**
 * The package as users get it: `npm pack`, installed into a temporary project next to the runtime
 * entries of test/runtimes/, which import it by name ('cross-app-access').
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Packs `root` into `work` and installs the tarball there (its dependencies from the registry). */
export function installPackedPackage(root, work) {
  const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const out = run('npm', ['pack', '--json', '--pack-destination', work], root);
  // `npm pack --json`'s report; the prepare script's own output, if any, comes before it.
  const packed = JSON.parse(out.slice(out.search(/^\[/m)))[0];
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'runtimes', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', join(work, packed.filename)], work);
  const entries = join(root, 'test', 'runtimes');
  for (const file of readdirSync(entries).filter((f) => f.endsWith('.mjs') || f.endsWith('.html'))) cpSync(join(entries, file), join(work, file));
  return { tarball: packed.filename, version: packed.version };
}
