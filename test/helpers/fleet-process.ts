/**
 * A fleet member in its own Node process (`node --import tsx <script> ...args`), driven by lines:
 * it prints `ready` once set up, answers each command line written to its stdin with one JSON line,
 * and ends on `exit`. Killed after the test if still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach } from 'vitest';

export interface FleetProcess {
  /** Writes `command` and resolves with the JSON line it answers with. */
  ask<T>(command: string): Promise<T>;
  /** Asks it to end, and resolves once it has. */
  exit(): Promise<void>;
}

/** Registers the hook that kills, after each test, the processes it started; returns the starter. */
export function useFleetProcesses(): (script: string, args: string[]) => Promise<FleetProcess> {
  const children = new Set<ChildProcess>();
  afterEach(() => {
    for (const child of children) child.kill('SIGKILL');
    children.clear();
  });
  return async (script, args) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(child);
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`fleet member exited (${child.exitCode ?? child.signalCode})`);
      return value as string;
    };
    const ready = await next();
    if (ready !== 'ready') throw new Error(`fleet member said ${JSON.stringify(ready)} instead of ready`);
    return {
      ask: async (command) => {
        child.stdin!.write(`${command}\n`);
        return JSON.parse(await next());
      },
      exit: async () => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.stdin!.write('exit\n');
        await exited;
        children.delete(child);
      },
    };
  };
}
