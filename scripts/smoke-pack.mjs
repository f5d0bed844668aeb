// Packs the tarball, installs it in a temporary project, and runs one request through it from both
// require() and import(), so a broken exports map or a CJS/ESM interop bug fails here, not for users.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'cross-app-access-smoke-'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
/** `npm pack --json`'s report; the prepare script's own output, if any, comes before it. */
const packReport = (out) => JSON.parse(out.slice(out.search(/^\[/m)))[0];

try {
  const packed = packReport(run('npm', ['pack', '--json', '--pack-destination', work], root));
  const files = packed.files.map((f) => f.path);
  const unexpected = files.filter((f) => !/^(dist\/|package\.json$|README\.md$|LICENSE$)/.test(f));
  if (unexpected.length > 0) throw new Error(`unexpected files in the tarball: ${unexpected.join(', ')}`);
  console.log(`packed ${packed.filename}: ${files.length} files, ${packed.size} bytes`);

  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'smoke', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(work, packed.filename)], work);
  // undici is an optional peer dependency (for cross-app-access/undici only): the dev copy, no download.
  cpSync(join(root, 'node_modules', 'undici'), join(work, 'node_modules', 'undici'), { recursive: true, dereference: true });
  // @opentelemetry/api likewise, for cross-app-access/otel only.
  cpSync(join(root, 'node_modules', '@opentelemetry', 'api'), join(work, 'node_modules', '@opentelemetry', 'api'), { recursive: true, dereference: true });

  // One request through the wrapper: a loopback server outside the resource must see no Authorization,
  // and a bad option must throw a ConfigurationError that instanceof recognises across both builds.
  const probe = `
    const http = require('node:http');
    module.exports = async function probe(lib, other) {
      const server = http.createServer((req, res) => res.end(String(req.headers.authorization ?? 'none')));
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address();
      try {
        const authed = lib.withCrossAppAccess(fetch, {
          idToken: 'x', idp: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'a' },
          client: { clientId: 'b' }, resource: 'http://127.0.0.1:' + port + '/mcp',
        });
        const text = await (await authed('http://127.0.0.1:' + port + '/public')).text();
        if (text !== 'none') throw new Error('outside the resource a token was sent');
        let error;
        try { lib.crossAppAccess({ idToken: '' }); } catch (e) { error = e; }
        if (!(error instanceof lib.CrossAppAccessError) || !(error instanceof other.CrossAppAccessError) || error.stage !== 'config') {
          throw new Error('ConfigurationError is not recognised across builds');
        }
        return 'ok';
      } finally { server.close(); }
    };`;
  writeFileSync(join(work, 'probe.cjs'), probe);
  writeFileSync(
    join(work, 'check.mjs'),
    `import { createRequire } from 'node:module';
     const require = createRequire(import.meta.url);
     const cjs = require('cross-app-access');
     const esm = await import('cross-app-access');
     if (typeof cjs.withCrossAppAccess !== 'function' || typeof esm.withCrossAppAccess !== 'function') throw new Error('missing export');
     if (cjs.withCrossAppAccess === esm.withCrossAppAccess) throw new Error('expected separate CJS and ESM builds');
     // The redis entry point loads from both builds, and neither entry loads redis: it is not installed here.
     let installed = true;
     try { require.resolve('redis'); } catch { installed = false; }
     if (installed) throw new Error('redis is installed in the smoke project: the check below would prove nothing');
     for (const redis of [require('cross-app-access/redis'), await import('cross-app-access/redis')]) {
       let error;
       try { redis.redisTokenStore({ client: { isReady: false, sendCommand: async () => null }, encryptionKeys: [] }); } catch (e) { error = e; }
       if (!(error instanceof cjs.ConfigurationError) || !(error instanceof esm.ConfigurationError)) throw new Error('cross-app-access/redis: no typed ConfigurationError');
     }
     const probe = require('./probe.cjs');
     console.log('require():', await probe(cjs, esm));
     console.log('import():', await probe(esm, cjs));
     // The undici entry point: both builds, each accepting its own build's engine (one shared copy of
     // the engine per format), and one request outside the resource passing through untouched.
     const cjsUndici = require('cross-app-access/undici');
     const esmUndici = await import('cross-app-access/undici');
     const { Agent, request } = require('undici');
     const http = require('node:http');
     const server = http.createServer((req, res) => res.end(String(req.headers.authorization ?? 'none')));
     await new Promise((r) => server.listen(0, '127.0.0.1', r));
     const base = 'http://127.0.0.1:' + server.address().port;
     try {
       for (const [name, lib, undiciLib] of [['require()', cjs, cjsUndici], ['import()', esm, esmUndici]]) {
         const xaa = new lib.CrossAppAccess({ idp: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'a' }, client: { clientId: 'b' }, resource: base + '/mcp' });
         const agent = new Agent().compose(undiciLib.crossAppAccessInterceptor(xaa, { user: 'u', idToken: 'x' }));
         const text = await (await request(base + '/public', { dispatcher: agent })).body.text();
         await agent.close();
         if (text !== 'none') throw new Error('undici: outside the resource a token was sent');
         console.log(name, 'cross-app-access/undici: ok');
       }
     } finally { server.close(); }
     // The otel entry point from both builds: an Instrumentation that enables and disables.
     for (const otel of [require('cross-app-access/otel'), await import('cross-app-access/otel')]) {
       const instrumentation = new otel.CrossAppAccessInstrumentation({ enabled: false });
       if (instrumentation.instrumentationName !== 'cross-app-access' || !/^[0-9]+[.][0-9]+[.][0-9]+/.test(instrumentation.instrumentationVersion)) throw new Error('cross-app-access/otel: no name or version');
       instrumentation.enable();
       instrumentation.disable();
     }
     console.log('cross-app-access/otel: ok');`,
  );
  process.stdout.write(run('node', ['check.mjs'], work));
  // The bin, as a user runs it: `npx cross-app-access doctor --help` from the installed tarball.
  const help = run('npx', ['--no-install', 'cross-app-access', 'doctor', '--help'], work);
  if (!help.includes('Usage: cross-app-access doctor')) throw new Error('npx cross-app-access doctor --help printed no usage');
  console.log('npx cross-app-access doctor --help: ok');
  // dev: its help needs nothing more; without its optional peers it says what to install (exit 2).
  const devHelp = run('npx', ['--no-install', 'cross-app-access', 'dev', '--help'], work);
  if (!devHelp.includes('Usage: cross-app-access dev')) throw new Error('npx cross-app-access dev --help printed no usage');
  console.log('npx cross-app-access dev --help: ok');
  const bare = spawnSync('npx', ['--no-install', 'cross-app-access', 'dev'], { cwd: work, encoding: 'utf8' });
  if (bare.status !== 2 || !bare.stderr.includes('npm i -D @modelcontextprotocol/sdk jose')) {
    throw new Error(`dev without jose and the MCP SDK: exit ${bare.status}, ${bare.stderr}`);
  }
  console.log('npx cross-app-access dev without its optional peers: exit 2 with the install line: ok');
  // With them (the dev copies, linked: no download), dev starts, prints its options and stops on SIGINT.
  mkdirSync(join(work, 'node_modules', '@modelcontextprotocol'), { recursive: true });
  symlinkSync(join(root, 'node_modules', 'jose'), join(work, 'node_modules', 'jose'));
  symlinkSync(join(root, 'node_modules', '@modelcontextprotocol', 'sdk'), join(work, 'node_modules', '@modelcontextprotocol', 'sdk'));
  await devStartsAndStops(join(work, 'node_modules', '.bin', 'cross-app-access'), work);
  console.log('npx cross-app-access dev: started, printed XAA_MCP_URL, stopped on SIGINT: ok');
  freshClonePacksDist(join(work, 'clone'));
  console.log('a fresh clone (no dist/) packs a built dist/ (prepare), as an install from git does: ok');
  console.log('smoke-pack: OK');
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Runs the installed bin's `dev`, waits for its options, then SIGINT: it must exit 0. */
async function devStartsAndStops(bin, cwd) {
  const child = spawn(bin, ['dev', '--quiet'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + 20_000;
  while (!out.includes('Ctrl-C stops')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dev did not start:\n${out}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!/^export XAA_MCP_URL='http:\/\/127\.0\.0\.1:\d+\/mcp'$/m.test(out)) throw new Error(`dev printed no XAA_MCP_URL:\n${out}`);
  child.kill('SIGINT');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
  if (code !== 0) {
    child.kill('SIGKILL');
    throw new Error(`dev did not stop cleanly on SIGINT: ${code}\n${err}`);
  }
}

/** The tracked files only (as a fresh clone has them: no dist/), the dev dependencies linked: `npm pack` must build. */
function freshClonePacksDist(clone) {
  mkdirSync(clone);
  const tracked = run('git', ['ls-files', '-z'], root).split('\0').filter(Boolean);
  for (const file of tracked) cpSync(join(root, file), join(clone, file), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
  const packed = packReport(run('npm', ['pack', '--dry-run', '--json'], clone));
  const built = ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/cli.js', 'dist/undici.js', 'dist/redis.js', 'dist/otel.js'];
  const missing = built.filter((f) => !packed.files.some((p) => p.path === f));
  if (missing.length > 0) throw new Error(`npm pack of a fresh clone misses ${missing.join(', ')}: is the prepare script there?`);
}
