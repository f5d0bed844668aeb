import { CrossAppAccessError, untrustedText } from '../errors.js';
import type { UserState } from './users.js';
import type { IdTokenContext, IdTokenReason, IdTokenSource, ResolvedOptions } from '../options/types.js';
import { decodeJwt, numericClaim, stringClaim } from '../oauth/jwt.js';
import { DEFAULTS } from '../options/defaults.js';
import { callAppSource, type AppSourceNames } from './app-source.js';

const ID_TOKEN_LEEWAY_SECONDS = DEFAULTS.idTokenLeewaySeconds;
const ID_TOKEN_SOURCE: AppSourceNames = { option: 'idToken', returns: 'an ID token', code: 'id_token_unavailable', stage: 'id_token' };

/** An ID token and the user it names (`iss` + `sub` + `tenant`, draft-ietf-oauth-identity-assertion-authz-grant-04 §3.1); '' for an opaque token. */
export interface Subject {
  token: string;
  user: string;
  /** The ID token's `iss`, read, not verified (the IdP verifies it); undefined for an opaque token. */
  issuer: string | undefined;
  /** Its `exp` (seconds), when it names one. */
  exp: number | undefined;
}

interface Parsed {
  user: string;
  issuer: string | undefined;
  exp: number | undefined;
}

const OPAQUE: Parsed = { user: '', issuer: undefined, exp: undefined };

function userOf(idToken: string): Parsed {
  const jwt = decodeJwt(idToken);
  if (!jwt) return OPAQUE;
  const c = jwt.claims;
  const issuer = stringClaim(c, 'iss');
  const user = JSON.stringify([issuer ?? '', stringClaim(c, 'sub') ?? '', stringClaim(c, 'tenant') ?? stringClaim(c, 'tid') ?? '']);
  return { user, issuer, exp: numericClaim(c, 'exp') };
}

/** Where an acquisition reads ID tokens: the session's source, and whether it can give a new one. */
export interface IdTokenSupplier {
  readonly read: IdTokenSource;
  /** True for a fixed string: asking again cannot give a new one. */
  readonly isStatic: boolean;
}

/** What reading a user's ID token needs from its acquisition: the options, the clock, and the user it must keep naming. */
export interface IdTokenReading {
  readonly options: Pick<ResolvedOptions, 'subjectTokenType' | 'timeoutMs'>;
  readonly now: () => number;
  readonly user: UserState;
  /** With several IdPs, the issuers the ID token may name (the user's IdP, once known); else undefined. */
  readonly issuers?: readonly string[] | undefined;
}

/**
 * Reads an ID token from the app, refusing one whose `exp` has passed (RFC 7519 §4.1.4). `maxAge` goes with
 * reason `'reauthenticate'` when the IdP named one.
 */
export async function readSubject(reading: IdTokenReading, source: IdTokenSupplier, reason: IdTokenReason, maxAge?: number): Promise<Subject> {
  // Only an ID token names its user and its expiry; other subjects are opaque.
  const read = (token: string): Parsed => (reading.options.subjectTokenType === 'id_token' ? userOf(token) : OPAQUE);
  let token = await readIdToken(reading, source, reason, maxAge);
  let parsed = read(token);
  // An expired token is asked for once more as 'rejected', unless that (or a new sign-in) was just asked.
  const askedForFresh = reason === 'rejected' || reason === 'reauthenticate';
  if (isExpired(parsed.exp, reading.now()) && !source.isStatic && !askedForFresh) {
    token = await readIdToken(reading, source, 'rejected');
    parsed = read(token);
  }
  if (isExpired(parsed.exp, reading.now())) {
    throw new CrossAppAccessError('The ID token has expired (by its exp claim) and no fresh one was supplied: the user must sign in again.', {
      code: 'login_required',
      stage: 'id_token',
    });
  }
  // Checked before the identity is bound: a token from another IdP must not claim the key.
  const allowed = reading.issuers;
  if (allowed !== undefined && (parsed.issuer === undefined || !allowed.includes(parsed.issuer))) {
    // A key that already names someone: another IdP's token under it is a session mix-up, refused
    // (and the key with it) as any other (user_mismatch).
    if (reading.user.hasIdentity) reading.user.checkIdentity(parsed.user);
    const named = parsed.issuer === undefined ? 'names no issuer (iss)' : `was issued by ${untrustedText(parsed.issuer, 200)}`;
    const expected = allowed.length === 1 ? `this user's IdP is ${allowed[0]}` : `it is not one of the IdPs configured (${allowed.join(', ')})`;
    throw new CrossAppAccessError(`The ID token ${named}, but ${expected}; it was not sent anywhere.`, { code: 'idp_not_allowed', stage: 'id_token' });
  }
  reading.user.checkIdentity(parsed.user);
  return { token, user: parsed.user, issuer: parsed.issuer, exp: parsed.exp };
}

async function readIdToken(reading: IdTokenReading, source: IdTokenSupplier, reason: IdTokenReason, maxAge?: number): Promise<string> {
  const ms = reading.options.timeoutMs;
  const signal = AbortSignal.timeout(ms);
  const context: IdTokenContext = { reason, signal };
  if (reading.user.key !== '') context.user = reading.user.key;
  if (maxAge !== undefined) context.maxAge = maxAge;
  return callAppSource(() => source.read(context), ms, reason, ID_TOKEN_SOURCE);
}

/** Whether an ID token's `exp` has passed at `nowMs` (with the same leeway as when it is read). */
export function isExpired(exp: number | undefined, nowMs: number): boolean {
  return exp !== undefined && exp + ID_TOKEN_LEEWAY_SECONDS < nowMs / 1000;
}
