/**
 * A Node process driven by lines (`node --import tsx <script> ...args`): it prints `ready` once set
 * up, answers each command line written to its stdin with one JSON line, and ends on `exit`. No
 * test runner involved, so the bench uses it too (test/helpers/fleet-process.ts adds the hooks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LineProcess {
  readonly child: ChildProcess;
  /** Writes `command` and resolves with the JSON line it answers with. */
  ask<T>(command: string): Promise<T>;
  /** Asks it to end, and resolves once it has. */
  exit(): Promise<void>;
}

/** Starts `script` and resolves once it says `ready`; the child is SIGKILLed if it says anything else. */
export async function startLineProcess(script: string, args: string[]): Promise<LineProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`fleet member exited (${child.exitCode ?? child.signalCode})`);
    return value as string;
  };
  try {
    const ready = await next();
    if (ready !== 'ready') throw new Error(`fleet member said ${JSON.stringify(ready)} instead of ready`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    child,
    ask: async (command) => {
      child.stdin!.write(`${command}\n`);
      return JSON.parse(await next());
    },
    exit: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.write('exit\n');
      await exited;
    },
  };
}
