import { CrossAppAccessError } from '../errors.js';

/** How one of the application's token functions (`idToken`, `assertion`) is named in its errors. */
export interface AppSourceNames {
  /** The option's name, as the messages say it. */
  readonly option: 'idToken' | 'assertion';
  /** What it returns, for "…, not an ID token." */
  readonly returns: string;
  readonly code: 'id_token_unavailable' | 'assertion_unavailable';
  readonly stage: 'id_token' | 'assertion';
}

/** `work`, or `onTimeout()`'s error after `ms`. */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    (timer as { unref?: () => void }).unref?.();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Calls an application token function within `ms`: its answer, a non-empty string, or a typed error
 * (`timeout`, or the source's `code`). A throw of its own stays as the error's cause, its message not
 * copied (it may quote a token).
 */
export async function callAppSource(call: () => unknown, ms: number, reason: string, names: AppSourceNames): Promise<string> {
  let value: unknown;
  try {
    const work = Promise.resolve().then(call);
    value = await withTimeout(work, ms, () => new CrossAppAccessError(`The ${names.option} source did not answer within ${ms} ms.`, { code: 'timeout', stage: names.stage }));
  } catch (error) {
    if (error instanceof CrossAppAccessError) throw error;
    throw new CrossAppAccessError(`The ${names.option} source failed (reason "${reason}"); see cause.`, { code: names.code, stage: names.stage, cause: error });
  }
  if (typeof value !== 'string' || value.trim() === '') {
    throw new CrossAppAccessError(`The ${names.option} source returned ${typeof value === 'string' ? 'an empty string' : `a ${typeof value}`}, not ${names.returns}.`, {
      code: names.code,
      stage: names.stage,
    });
  }
  return value;
}
