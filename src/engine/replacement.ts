import type { ResourceBinding } from './binding.js';
import type { Engine, Session } from './engine.js';
import type { AccessToken } from './tokens.js';

// This process's own order of events: tokens it acquired or took from a store, and refusals. The
// clock orders tokens across the fleet; this breaks its ties (a clock that stands still, as in
// tests, or several events within one millisecond).
let ticks = 0;
/** Tokens this process acquired itself (exchange and grant), with when, in `ticks`. */
const acquiredAt = new WeakMap<AccessToken, number>();
/** Tokens this process acquired or took from a store, with when it first had them, in `ticks`. */
const learnedAt = new WeakMap<AccessToken, number>();

/** Records that this process acquired `token` itself (rather than took it from a store). */
export function noteAcquired(token: AccessToken): void {
  acquiredAt.set(token, ++ticks);
  learnedAt.set(token, ticks);
}

/** Records that this process took `token` from a store (another process acquired it). */
export function noteTaken(token: AccessToken): void {
  if (!learnedAt.has(token)) learnedAt.set(token, ++ticks);
}

/**
 * Whether this process acquired `token` itself. A token a request acquired after a refusal that
 * the server refuses too is the server's answer; one taken from a store may merely be as dead as
 * the refused one.
 */
export function acquiredHere(token: AccessToken): boolean {
  return acquiredAt.has(token);
}

/**
 * What the retry after a 401 needs (RFC 6750 §3.1 `invalid_token`): a token received after a point
 * (`after`, epoch ms on the engine's clock, or acquired here after `afterTick`). A token that merely
 * differs from the refused one may have been issued before the same revocation. Requests with the
 * same need share one acquisition: `flight` names it (the rule, and the refused token).
 */
export interface Need {
  readonly after: number;
  readonly afterTick: number;
  readonly flight: string;
}

/** Whether `token` is unexpired at `now` and meets `need`. */
export function meets(token: AccessToken, need: Need | undefined, now: number): boolean {
  return now < token.expiresAt && (need === undefined || token.receivedAt > need.after || (acquiredAt.get(token) ?? 0) > need.afterTick);
}

/** A replacement for `refused`: one received after it (another process's, or this one's). */
export function receivedAfter(refused: AccessToken): Need {
  return { after: refused.receivedAt, afterTick: learnedAt.get(refused) ?? Infinity, flight: `after\u0000${refused.fingerprint}\u0000${refused.receivedAt}` };
}

/** A token received after `refusedAt`, for when `refused` came from a store and was refused too. */
export function acquiredAfter(refused: AccessToken, refusedAt: number): Need {
  return { after: refusedAt, afterTick: ++ticks, flight: `fresh\u0000${refused.fingerprint}\u0000${refused.receivedAt}` };
}

/** A token for a request, and whether this process acquired it for the request rather than took it from a store. */
export interface Obtained {
  readonly token: AccessToken;
  readonly fresh: boolean;
}

/**
 * A token for `binding` that meets `need` (without one: any usable token, as `tokenFor`): this
 * process's own if it does, else the fleet's if it does, else one acquisition (shared by the
 * requests with the same need).
 */
export async function obtainToken(engine: Engine, binding: ResourceBinding, session: Session, signal: AbortSignal | null | undefined, need?: Need): Promise<Obtained> {
  // The token key names the user's IdP: with several IdPs, the user's first ID token tells it.
  await engine.knowIdp(session, signal, binding);
  const key = engine.tokenKey(binding, session);
  const local = engine.storedFor(key, session);
  if (!need) {
    const token = await engine.tokenFor(binding, session, signal);
    return { token, fresh: token !== local && acquiredHere(token) };
  }
  session.user.assertUsable();
  if (local && meets(local, need, engine.now())) return { token: local, fresh: false };
  const token = await engine.acquire(binding, session, key, signal, undefined, need);
  return { token, fresh: acquiredHere(token) };
}
