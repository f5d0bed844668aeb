const ignore = () => undefined;

/**
 * Settles like `work`, but rejects with the signal's reason as soon as it aborts. `work` goes on for
 * whoever else waits on it (a shared acquisition is never cancelled by one caller), and a failure of
 * `work` after this caller left is never an unhandled rejection.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | null | undefined): Promise<T> {
  if (!signal) return work;
  work.catch(ignore);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
