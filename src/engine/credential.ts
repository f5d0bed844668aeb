import { dpopChallengeError } from '../oauth/challenge.js';
import type { Dpop } from '../oauth/dpop/dpop.js';
import { accessTokenHash } from '../oauth/dpop/proof.js';
import { CrossAppAccessError } from '../errors.js';
import type { AccessToken } from './tokens.js';

/**
 * A DPoP-bound access token as a request carries it (RFC 9449 §7): `Authorization: DPoP <token>` and
 * a new proof for that very request (its method and URL, the token's hash), never as Bearer.
 */
export class DpopCredential {
  /** The token's `ath` (RFC 9449 §4.2), hashed once. */
  private ath: Promise<string> | undefined;

  constructor(
    readonly value: string,
    private readonly jkt: string,
    private readonly dpop: Dpop,
  ) {}

  /** The `Authorization` value (RFC 9449 §7.1). */
  get authorization(): string {
    return `DPoP ${this.value}`;
  }

  /** A new proof for one request; refuses a token bound to a key that is not this engine's. */
  async proof(method: string, url: string): Promise<string> {
    const key = await this.dpop.key();
    if (key.jkt !== this.jkt) {
      throw new CrossAppAccessError('A stored DPoP-bound access token is bound to another DPoP key than this engine\'s; it was not sent. Every process sharing a token store must use the same dpop.privateKey.', {
        code: 'dpop_key_mismatch',
        stage: 'request',
      });
    }
    return this.dpop.proof(method, url, (this.ath ??= accessTokenHash(this.value)));
  }

  /**
   * Notes the answer's `DPoP-Nonce` (RFC 9449 §8.2: every one refreshes the server's nonce); true
   * when it is a 401 asking for a new proof: with that nonce (§9), or because the proof was refused
   * (`invalid_dpop_proof`, §7.1; e.g. its `jti` replayed by a retry beneath the adapter, §11.1). Worth
   * one more try with a new proof, not a new token.
   */
  asksForNewProof(url: string, status: number, headers: { get(name: string): string | null }): boolean {
    const nonce = this.dpop.nonces.note(url, headers);
    if (status !== 401) return false;
    const error = dpopChallengeError(headers);
    return error === 'invalid_dpop_proof' || (error === 'use_dpop_nonce' && nonce !== undefined);
  }
}

/** What a request carries: a Bearer token (its value) or a DPoP-bound one. */
export type Credential = string | DpopCredential;

const credentials = new WeakMap<AccessToken, DpopCredential>();

/**
 * How `token` is sent: a Bearer token as itself; a DPoP-bound one with this engine's DPoP, or not
 * at all when the engine has none (never downgraded to Bearer).
 */
export function credentialOf(token: AccessToken, dpop: Dpop | undefined): Credential {
  if (token.tokenType !== 'DPoP') return token.value;
  if (!dpop || token.jkt === undefined) {
    throw new CrossAppAccessError('A stored access token is DPoP-bound but this engine has no DPoP key (the dpop option); it was not sent as Bearer.', {
      code: 'dpop_key_mismatch',
      stage: 'request',
    });
  }
  let credential = credentials.get(token);
  if (!credential) credentials.set(token, (credential = new DpopCredential(token.value, token.jkt, dpop)));
  return credential;
}

/** The token's value, whichever way it is sent. */
export function valueOf(credential: Credential): string {
  return typeof credential === 'string' ? credential : credential.value;
}
