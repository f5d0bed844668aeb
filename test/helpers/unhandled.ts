/**
 * Collects the unhandled promise rejections of `work`: those raised while it runs and those that
 * surface in the event-loop turns after it settles (Node reports a rejection once the microtask
 * queue has drained, so a few `setImmediate` turns suffice; no timed wait).
 */
export async function unhandledRejectionsDuring(work: () => Promise<unknown>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await work();
    await eventLoopTurns(5);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return seen;
}

/** Lets pending I/O callbacks and microtasks run for `n` turns of the event loop. */
export async function eventLoopTurns(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
