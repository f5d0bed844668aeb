type Timer = ReturnType<typeof setTimeout> & { ref?: () => unknown; unref?: () => unknown };

/**
 * Whether an acquisition's waits keep the process alive: exactly while a caller waits on it.
 * A request that joins a background renewal makes the renewal's retry waits hold the process (a
 * script must not exit with that request unsettled); once every caller has left (aborted, or only a
 * background renewal remains), nothing holds it.
 */
export class Liveness {
  private waiters = 0;
  private readonly timers = new Set<Timer>();

  /** A caller starts waiting; returns the function to call when it stops. */
  hold(): () => void {
    if (this.waiters++ === 0) for (const timer of this.timers) timer.ref?.();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.waiters === 0) for (const timer of this.timers) timer.unref?.();
    };
  }

  /** Waits `ms`, holding the process only while some caller waits. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer: Timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      if (this.waiters === 0) timer.unref?.();
      this.timers.add(timer);
    });
  }
}
