/** The machine a run is made on, for results.json and BENCHMARKS.md. */
import os from 'node:os';

export interface Machine {
  /** `os.cpus()[0].model`. */
  cpu: string;
  /** Logical cores (`os.cpus().length`). */
  cores: number;
  /** Total memory in bytes. */
  totalMemoryBytes: number;
  /** e.g. `linux 6.8.0 x64`. */
  os: string;
  /** `process.version`. */
  node: string;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemoryBytes: os.totalmem(),
    os: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

export function formatMachine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${m.os}, Node ${m.node}`;
}
