import { loadDpopKey, dpopCacheId, type DpopOption, type DpopSigner } from './key.js';
import { DpopNonces } from './nonces.js';
import { htuOf, signProof } from './proof.js';

/**
 * One engine's DPoP (RFC 9449): its key (made or imported once, at first use), the servers' nonces,
 * and the proofs: one new proof for every request, token requests and resource requests alike.
 */
export class Dpop {
  /** A synchronous name of the key for cache partitions (see {@link dpopCacheId}). */
  readonly cacheId: string;
  readonly nonces = new DpopNonces();
  /** Whether the token exchange at the IdP carries a proof too (the ID-JAG bound to the key). */
  readonly bindsIdJag: boolean;
  private signer: Promise<DpopSigner> | undefined;
  /** The last URL a proof was made for, read: MCP transports send to one URL again and again. */
  private lastTarget: { url: string; htu: string; origin: string } | undefined;

  constructor(
    private readonly option: DpopOption,
    private readonly now: () => number,
  ) {
    this.cacheId = dpopCacheId(option);
    this.bindsIdJag = option !== true && option.bindIdJag === true;
  }

  /** The key, ready to sign; rejects with the same `ConfigurationError` every time if it cannot be. */
  key(): Promise<DpopSigner> {
    return (this.signer ??= loadDpopKey(this.option));
  }

  /**
   * A proof for one request to `url` (RFC 9449 §4.2), with the latest nonce of its server and, for a
   * resource request, the access token's hash (`ath`, §4.2, §7; hashed by the caller).
   */
  async proof(method: string, url: string, accessTokenHash?: Promise<string>): Promise<string> {
    const signer = await this.key();
    const ath = await accessTokenHash;
    const target = this.target(url);
    return signProof(signer, { htm: method, htu: target.htu, ath, nonce: this.nonces.forOrigin(target.origin), nowMs: this.now() });
  }

  private target(url: string): { url: string; htu: string; origin: string } {
    const last = this.lastTarget;
    if (last?.url === url) return last;
    const parsed = new URL(url);
    return (this.lastTarget = { url, htu: htuOf(parsed), origin: parsed.origin });
  }
}
