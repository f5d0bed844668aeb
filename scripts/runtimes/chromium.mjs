/**
 * Headless Chromium (Debian's `chromium`), driven by playwright-core: test/runtimes/page.mjs is
 * bundled for the browser by esbuild from the installed package, served with page.html from a
 * loopback origin of its own, and runs the flow tests in the page against the servers on other
 * loopback origins (which answer with CORS headers). A fresh profile; no background networking.
 */
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { track } from './processes.mjs';

const CHROMIUM = process.env.XAA_CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps calling home over the closed network.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** Serves page.html and page.js from `work` on 127.0.0.1; nothing else. */
async function servePage(work) {
  const files = { '/': ['page.html', 'text/html; charset=utf-8'], '/page.js': ['page.js', 'text/javascript; charset=utf-8'] };
  const server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://127.0.0.1').pathname];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' }).end(readFileSync(join(work, file[0])));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((resolve) => server.close(resolve)) };
}

export function chromiumRuntime() {
  return {
    name: 'chromium',
    cors: true,
    prepare: () => ({ version: undefined }),
    async run(runtime, work, config) {
      // platform browser: the `browser` export conditions of the package's dependencies (lru-cache).
      await build({ entryPoints: [join(work, 'page.mjs')], bundle: true, format: 'esm', platform: 'browser', outfile: join(work, 'page.js'), logLevel: 'error' });
      const page = await servePage(work);
      const userDataDir = mkdtempSync(join(work, 'chromium-profile-'));
      // Signals are ours (processes.mjs): the browser is closed before the work directory goes.
      const launching = chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM, headless: true, args: FLAGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
      });
      // Tracked from the launch on: a signal during the launch waits for it, then closes the browser.
      const untrack = track(async () => (await launching.catch(() => undefined))?.close());
      const context = await launching.catch((error) => {
        untrack();
        throw error;
      });
      try {
        const tab = context.pages()[0] ?? (await context.newPage());
        const problems = [];
        tab.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
        tab.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`));
        await tab.goto(page.url);
        await tab.waitForFunction(() => typeof globalThis.runFlowTests === 'function');
        // The user agent says 156.0.0.0 (reduced); the browser itself says which build it is.
        const { product } = await (await context.newCDPSession(tab)).send('Browser.getVersion');
        runtime.version = /[\d.]+$/.exec(product)?.[0];
        const results = await tab.evaluate((c) => globalThis.runFlowTests(c), config);
        // What the page logged besides (a CORS refusal) helps read a failure.
        const logged = problems.length > 0 ? `\n${problems.slice(0, 10).join('\n')}` : '';
        return results.map((r) => (r.ok ? r : { ...r, error: `${r.error}${logged}` }));
      } finally {
        await context.close();
        untrack();
        await page.close();
      }
    },
  };
}
