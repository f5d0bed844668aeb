import { CrossAppAccessError } from '../errors.js';
import { decodeJwt, numericClaim, stringClaim } from '../oauth/jwt.js';
import type { ResolvedIdp } from '../options/types.js';
import type { WorkloadAssertionContext, WorkloadAssertionReason, WorkloadAssertionSource } from '../options/workload-types.js';
import { callAppSource, type AppSourceNames } from './app-source.js';
import { isExpired } from './id-token.js';
import type { UserState } from './users.js';

const ASSERTION_SOURCE: AppSourceNames = { option: 'assertion', returns: 'a JWT', code: 'assertion_unavailable', stage: 'assertion' };

/** A platform JWT as read from the application, and the workload it names. */
export interface PlatformAssertion {
  readonly token: string;
  /** `iss` + `sub` of the JWT (read, not verified: the authorization server verifies it); '' when it names neither. */
  readonly identity: string;
  /** Its `iss` and `sub`, for the cache partition. */
  readonly issuer: string;
  readonly subject: string;
}

/** What reading an assertion needs: the source, the timeout, the clock and the user key it is for. */
export interface AssertionReading {
  readonly source: WorkloadAssertionSource;
  readonly timeoutMs: number;
  readonly now: () => number;
  readonly user: UserState;
}

/**
 * Reads the workload's platform JWT for `audience` (the authorization server's issuer, RFC 7523 §3)
 * and `resource`; one whose `exp` has passed (RFC 7519 §4.1.4) is asked for once more as
 * `'expired'`, and refused if it is still expired, as is one whose `aud` names another server:
 * nothing is sent.
 */
export async function readAssertion(reading: AssertionReading, audience: string, resource: string, reason: WorkloadAssertionReason): Promise<PlatformAssertion> {
  let read = parse(await readToken(reading, audience, resource, reason));
  if (read.exp !== undefined && isExpired(read.exp, reading.now()) && reason !== 'expired') read = parse(await readToken(reading, audience, resource, 'expired'));
  if (read.exp !== undefined && isExpired(read.exp, reading.now())) {
    throw new CrossAppAccessError('The assertion source returned an expired JWT (by its exp claim), also when asked again for a fresh one; nothing was sent.', {
      code: 'assertion_unavailable',
      stage: 'assertion',
    });
  }
  requireAudience(read.aud, audience);
  return read.assertion;
}

/**
 * A platform JWT goes only to the server its `aud` names (RFC 7523 §3): one for another audience
 * (say, a Kubernetes token for the API server) would let this server replay it there. Compared as
 * the issuer, a lone trailing slash aside; a JWT that names no audience is left to the server.
 */
function requireAudience(aud: unknown, audience: string): void {
  if (aud === undefined) return;
  const trim = (value: unknown) => (typeof value === 'string' ? value.replace(/\/$/, '') : value);
  const audiences: unknown[] = Array.isArray(aud) ? aud : [aud];
  if (audiences.some((value) => trim(value) === trim(audience))) return;
  throw new CrossAppAccessError(
    `The assertion source returned a JWT for another audience than the authorization server ${audience}; it was not sent (that server could replay it where it is valid). Request the platform token for the audience the source is given.`,
    { code: 'assertion_mismatch', stage: 'assertion' },
  );
}

function parse(token: string): { assertion: PlatformAssertion; exp: number | undefined; aud: unknown } {
  const claims = decodeJwt(token)?.claims;
  const issuer = (claims && stringClaim(claims, 'iss')) ?? '';
  const subject = (claims && stringClaim(claims, 'sub')) ?? '';
  const identity = issuer === '' && subject === '' ? '' : JSON.stringify(['workload', issuer, subject]);
  return { assertion: { token, identity, issuer, subject }, exp: claims && numericClaim(claims, 'exp'), aud: claims?.aud };
}

async function readToken(reading: AssertionReading, audience: string, resource: string, reason: WorkloadAssertionReason): Promise<string> {
  const ms = reading.timeoutMs;
  const context: WorkloadAssertionContext = { audience, resource, reason, signal: AbortSignal.timeout(ms) };
  if (reading.user.key !== '') context.user = reading.user.key;
  const value = await callAppSource(() => reading.source(context), ms, reason, ASSERTION_SOURCE);
  // A token file read with readFile ends with a newline: a JWT has no whitespace (RFC 7515 §7.1).
  return value.trim();
}

/**
 * Binds the user key to the workload its first assertion names, and refuses any other: a key must
 * never receive (nor share in a store) the tokens of another workload. '' (an opaque assertion) is
 * not checked.
 */
export function checkWorkload(user: UserState, assertion: PlatformAssertion): void {
  try {
    user.checkIdentity(assertion.identity);
  } catch {
    const whose = user.key === '' ? 'this wrapper' : `user key "${user.key.slice(0, 100)}"`;
    throw new CrossAppAccessError(`The assertion names another workload (iss and sub) than the first one seen for ${whose}; nothing was sent, and it is refused until forgotten. One wrapper or user key serves one workload.`, {
      code: 'user_mismatch',
      stage: 'assertion',
    });
  }
}

/** Cache partitions by workload, shared: the same workload is the same partition object in every engine. */
const partitions = new Map<string, ResolvedIdp>();
const MAX_PARTITIONS = 10_000;

/**
 * The cache partition of a workload's tokens, in the place of a user's IdP: its `iss` and `sub`
 * are part of every token key (and store key), so two workloads that share a store and a user key
 * never share a token.
 */
export function workloadPartition(assertion: PlatformAssertion): ResolvedIdp {
  const partition = JSON.stringify(['workload', assertion.issuer, assertion.subject]);
  let found = partitions.get(partition);
  if (!found) {
    if (partitions.size >= MAX_PARTITIONS) partitions.clear();
    found = Object.freeze({ clientId: '', partition });
    partitions.set(partition, found);
  }
  return found;
}
