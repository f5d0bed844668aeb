/**
 * Requests/s over one slice: `concurrency` loops, each sending one request after another until `ms`
 * have passed. `send` resolves for a success and throws for a failure; CPU per successful request is
 * the whole process's (user + system).
 */
export async function slice(send: () => Promise<unknown>, concurrency: number, ms: number): Promise<{ rps: number; cpuUs: number; done: number; errors: number }> {
  let done = 0;
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + ms;
  const loop = async () => {
    while (performance.now() < end) {
      try {
        await send();
        done++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const used = process.cpuUsage(cpu);
  return { rps: done / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / Math.max(1, done), done, errors };
}

/** A `send` for {@link slice} from a fetch call: reads the body, and fails on anything but 200. */
export function okResponse(send: () => Promise<Response>): () => Promise<void> {
  return async () => {
    const response = await send();
    await response.text();
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
  };
}

/** An event-loop turn: pending immediates run, as between real requests. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * CPU per call of `call`, over `n` sequential calls after a warm-up (no network: the code's own
 * cost). With `turnEvery`, an event-loop turn after every that many calls (a client doing I/O has
 * one between requests; without it, whatever the calls defer to `setImmediate` piles up).
 */
export async function cpuPerCall(call: () => Promise<unknown>, n: number, turnEvery = 0): Promise<number> {
  const turnsAfter = (i: number) => turnEvery > 0 && i % turnEvery === turnEvery - 1;
  for (let i = 0; i < n / 10; i++) {
    await call();
    if (turnsAfter(i)) await turn();
  }
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    await call();
    if (turnsAfter(i)) await turn();
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}
