/**
 * Every process the runtime tests start, each in its own process group (wrangler's workerd, a
 * runtime's children are ended with it), and ended however the run ends: after each runtime, on an
 * error, on Ctrl-C or SIGTERM (scripts/runtimes.mjs calls {@link stopAll}), and at this process's exit. A process started by a library (Chromium,
 * by playwright) is registered with {@link track}.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** @type {Set<{ stop(): Promise<void>, kill(): void }>} */
const running = new Set();

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // The group is gone already.
    return false;
  }
}

/**
 * Starts `command` in a new process group, collecting its output.
 * @returns {{ child: import('node:child_process').ChildProcess, output(): string, exited: Promise<number | null>, stop(): Promise<void> }}
 */
export function startProcess(command, args, options = {}) {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk) => {
    output += chunk.toString('utf8');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise((resolve) => {
    child.once('error', (error) => {
      output += `\n${error.message}`;
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
  const pgid = child.pid;
  const handle = {
    /** SIGTERM to the group, SIGKILL to what is left after 3 s. */
    async stop() {
      if (pgid !== undefined) {
        signalGroup(pgid, 'SIGTERM');
        for (let i = 0; i < 30 && signalGroup(pgid, 0); i++) await new Promise((r) => setTimeout(r, 100));
        signalGroup(pgid, 'SIGKILL');
      }
      running.delete(handle);
    },
    /** Synchronous, for process exit. */
    kill() {
      if (pgid !== undefined) signalGroup(pgid, 'SIGKILL');
    },
  };
  running.add(handle);
  void exited.then(() => {
    // The leader is gone; its group may not be (workerd under wrangler): stop() ends it.
    if (pgid === undefined || !signalGroup(pgid, 0)) running.delete(handle);
  });
  return { child, output: () => output, exited, stop: handle.stop };
}

/**
 * Registers something started elsewhere: `stop` ends it on a signal (awaited before exiting),
 * `kill` at exit (synchronous). Returns the function that unregisters it once it is stopped.
 */
export function track(stop, kill = () => {}) {
  const handle = { stop: async () => { await stop(); running.delete(handle); }, kill };
  running.add(handle);
  return () => running.delete(handle);
}

/** Runs `command` to its end; its exit code and output. */
export async function runProcess(command, args, options = {}) {
  const started = startProcess(command, args, options);
  try {
    const code = await started.exited;
    return { code, output: started.output() };
  } finally {
    await started.stop();
  }
}

/** Ends every process still running. */
export async function stopAll() {
  await Promise.all([...running].map((p) => p.stop()));
}

// The last resort (the caller's stopAll() did not run): nothing is left running.
process.once('exit', () => {
  for (const p of running) p.kill();
});

/**
 * A temporary work directory for a run, removed by `remove()` once every process is ended (a
 * process may write inside it until it exits); on Ctrl-C or SIGTERM, every process is stopped and
 * the directory removed before exiting.
 */
export function workDirectory(prefix) {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rm(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      console.log(`${signal}: stopping every process started`);
      void stopAll().then(remove).finally(() => process.exit(130));
    });
  }
  return { path, remove };
}

/** `promise`, or a rejection naming `what` after `ms`: a safety net against a hang, not a measure of speed. */
export function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
