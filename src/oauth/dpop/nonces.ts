import { LRUCache } from 'lru-cache';
import { DEFAULTS } from '../../options/defaults.js';

// RFC 9449 §8.1: a nonce is an opaque string of NQCHAR (%x21 / %x23-5B / %x5D-7E); anything else is ignored.
const NONCE = new RegExp(`^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,${DEFAULTS.maxDpopNonceLength}}$`);

/**
 * The latest `DPoP-Nonce` of each server, by origin (RFC 9449 §8, §9): every response carrying the
 * header refreshes it; the next proof to that origin carries it.
 */
export class DpopNonces {
  private readonly byOrigin = new LRUCache<string, string>({ max: DEFAULTS.maxDpopNonceOrigins });

  /** The nonce to put in a proof for a URL of `origin`, if its server gave one. */
  forOrigin(origin: string): string | undefined {
    return this.byOrigin.get(origin);
  }

  /** Reads a response's `DPoP-Nonce`; says whether it carried a usable one. */
  note(url: string, headers: { get(name: string): string | null }): string | undefined {
    const nonce = headers.get('dpop-nonce')?.trim();
    if (nonce === undefined || !NONCE.test(nonce)) return undefined;
    this.byOrigin.set(new URL(url).origin, nonce);
    return nonce;
  }
}
