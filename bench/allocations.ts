/**
 * Bytes allocated on the JS heap per call of an async function, counted with no garbage collection
 * in the window: a deterministic measure, unlike CPU time on a shared machine. Each sample counts a
 * short batch of sequential calls by `heapUsed`; a sample during which any collection ran (seen by a
 * `gc` performance observer) is thrown away. Median of the kept samples.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { turn } from './slice.js';
import { median } from './stats.js';


export async function bytesPerCall(call: () => Promise<unknown>, options: { batch?: number; samples?: number; warmup?: number } = {}): Promise<number> {
  const batch = options.batch ?? 32;
  const samples = options.samples ?? 60;
  const collections: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collections.push(entry.startTime, entry.startTime + entry.duration);
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    for (let i = 0; i < (options.warmup ?? 2000); i++) {
      await call();
      if (i % 16 === 15) await turn();
    }
    const windows: Array<{ from: number; to: number; bytes: number }> = [];
    for (let s = 0; s < samples * 2; s++) {
      await turn();
      const from = performance.now();
      const heap = process.memoryUsage().heapUsed;
      for (let i = 0; i < batch; i++) await call();
      const bytes = (process.memoryUsage().heapUsed - heap) / batch;
      windows.push({ from, to: performance.now(), bytes });
    }
    // The observer reports after the fact: wait for it, then keep the windows no collection touched.
    await turn();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const clean = windows.filter((w) => !collections.some((t, i) => i % 2 === 0 && t <= w.to && collections[i + 1]! >= w.from)).slice(0, samples);
    if (clean.length < samples / 4) throw new Error(`bytesPerCall: only ${clean.length} of ${windows.length} samples ran without a collection`);
    return median(clean.map((w) => w.bytes));
  } finally {
    observer.disconnect();
  }
}
