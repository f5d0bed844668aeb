/**
 * A fleet member in its own Node process (see line-process.ts), killed after the test if still
 * running.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import { startLineProcess, type LineProcess } from './line-process.js';

export type FleetProcess = Omit<LineProcess, 'child'>;

/** Registers the hook that kills, after each test, the processes it started; returns the starter. */
export function useFleetProcesses(): (script: string, args: string[]) => Promise<FleetProcess> {
  const children = new Set<ChildProcess>();
  afterEach(() => {
    for (const child of children) child.kill('SIGKILL');
    children.clear();
  });
  return async (script, args) => {
    const started = await startLineProcess(script, args);
    children.add(started.child);
    return started;
  };
}
