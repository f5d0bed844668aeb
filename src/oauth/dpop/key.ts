import { ConfigurationError } from '../../errors.js';
import { algOf, base64url, importKey, importParams, privateKeyProblem, signParams, type JsonWebKeyLike, type SigningAlg } from '../client-assertion.js';

/**
 * The `dpop` option: `true` for an ES256 key pair made per engine (non-extractable), or a private key
 * that a fleet shares (RFC 9449).
 *
 * @example
 * ```ts
 * const dpop: DpopOption = { privateKey: process.env.DPOP_KEY_PEM! }; // -----BEGIN PRIVATE KEY-----…
 * withCrossAppAccess(fetch, { ...options, dpop });
 * ```
 */
export type DpopOption = true | DpopKeyOptions;

/**
 * DPoP settings (RFC 9449 §4.2): a key of one's own, a private JWK (EC P-256 or P-384, RSA, or OKP
 * Ed25519, with its public members) or a PKCS#8 PEM string (without one, an ES256 key is made per
 * engine, as with `dpop: true`); and whether to ask the IdP to bind the ID-JAG to the key too.
 *
 * @example
 * ```ts
 * // Every process of a fleet sharing a store is given the same key (a DPoP-bound token needs it).
 * const xaa = new CrossAppAccess({ ...options, dpop: { privateKey: JSON.parse(process.env.DPOP_JWK!), signingAlg: 'ES256' } });
 * ```
 */
export interface DpopKeyOptions {
  /** The private key: a private JWK or a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Default: one made per engine. */
  privateKey?: JsonWebKeyLike | string | undefined;
  /** The JWS algorithm of the proofs; default from the key (EC → ES256/ES384, RSA → RS256, Ed25519 → EdDSA). */
  signingAlg?: SigningAlg | undefined;
  /**
   * Also send a proof with the token exchange at the IdP, so that an IdP that supports it binds the
   * ID-JAG to the key (`cnf.jkt`, draft-ietf-oauth-identity-assertion-authz-grant-04 §8.6). An ID-JAG
   * bound to another key is refused (`id_jag_mismatch`); an IdP that does not bind it is reported
   * with a `diagnostic`. Default false.
   */
  bindIdJag?: boolean | undefined;
}

/** A DPoP key ready to sign: the private key (never extractable), its public JWK and its thumbprint. */
export interface DpopSigner {
  readonly key: CryptoKey;
  readonly alg: SigningAlg;
  /** The public JWK that goes into every proof's header (RFC 9449 §4.2 `jwk`). */
  readonly jwk: Readonly<Record<string, string>>;
  /** Its RFC 7638 SHA-256 thumbprint, base64url (the `jkt` a bound token is bound to, RFC 9449 §6). */
  readonly jkt: string;
}

// RFC 7638 §3.2: the required members of each key type, in lexicographic order.
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };
const CURVES: Record<string, readonly string[]> = { EC: ['P-256', 'P-384'], OKP: ['Ed25519'] };
const ALGS_BY_KTY: Record<string, readonly SigningAlg[]> = { EC: ['ES256', 'ES384'], RSA: ['RS256', 'PS256'], OKP: ['EdDSA'] };

/**
 * Why the `dpop` option cannot be used, or undefined (checked with the options, before anything is
 * made). A PEM's content is only checked when it is imported, at first use.
 */
export function dpopOptionProblem(value: unknown): string | undefined {
  if (value === true || value === false) return undefined;
  if (typeof value !== 'object' || value === null) return 'expected true, false, or { privateKey } (a private JWK or a PKCS#8 PEM)';
  const { privateKey, signingAlg, bindIdJag, ...rest } = value as { privateKey?: unknown; signingAlg?: unknown; bindIdJag?: unknown };
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) return `has an unknown member "${unknown}" (expected privateKey, signingAlg and bindIdJag)`;
  if (bindIdJag !== undefined && typeof bindIdJag !== 'boolean') return 'bindIdJag must be a boolean';
  if (signingAlg !== undefined && !Object.values(ALGS_BY_KTY).flat().includes(signingAlg as SigningAlg)) return 'signingAlg must be one of ES256, ES384, RS256, PS256, EdDSA';
  if (privateKey === undefined) return signingAlg === undefined || signingAlg === 'ES256' ? undefined : 'signingAlg other than ES256 needs a privateKey (the key made per engine is ES256)';
  if (privateKey === null) return 'privateKey must be a private JWK or a PKCS#8 PEM';
  if (typeof privateKey === 'object' && typeof CryptoKey !== 'undefined' && privateKey instanceof CryptoKey) {
    return 'privateKey must be a private JWK or a PKCS#8 PEM: a CryptoKey does not give its public half, which every proof carries';
  }
  const problem = privateKeyProblem(privateKey);
  if (problem) return `privateKey: ${problem.replace('for private_key_jwt', 'for DPoP')}`;
  if (typeof privateKey === 'string') return undefined;
  const jwk = privateKey as JsonWebKeyLike;
  const kty = jwk.kty as string;
  const curves = CURVES[kty];
  if (curves && !curves.includes(jwk.crv ?? '')) return `privateKey: curve "${String(jwk.crv)}" is not supported (${curves.join(', ')})`;
  const missing = THUMBPRINT_MEMBERS[kty]?.find((member) => typeof (jwk as Record<string, unknown>)[member] !== 'string');
  if (missing) return `privateKey: the JWK lacks its public member "${missing}"`;
  if (kty === 'RSA' && isShortRsa(jwk)) return SHORT_RSA;
  const alg = (signingAlg as SigningAlg | undefined) ?? (jwk.alg as SigningAlg | undefined);
  if (alg !== undefined && !ALGS_BY_KTY[kty]?.includes(alg)) return `privateKey: a ${kty} key cannot sign with ${alg} (${ALGS_BY_KTY[kty]?.join(', ')})`;
  if (alg === 'ES384' && jwk.crv !== 'P-384') return 'privateKey: ES384 needs a P-384 key';
  if (alg === 'ES256' && jwk.crv !== 'P-256') return 'privateKey: ES256 needs a P-256 key';
  return undefined;
}

// RFC 7518 §3.3, §3.5: RSA keys of at least 2048 bits.
const SHORT_RSA = 'privateKey: an RSA key must have at least 2048 bits (RFC 7518 §3.3)';

/** An RSA JWK's modulus (`n`, base64url without leading zero octets) is under 2048 bits. */
function isShortRsa(jwk: JsonWebKeyLike): boolean {
  return typeof jwk.n === 'string' && Math.floor((jwk.n.length * 6) / 8) < 256;
}

/**
 * A synchronous name for the key, for cache partitions: tokens bound to one key are never looked up
 * by an engine holding another. A JWK's public members (public); a PEM's digest-free text hash
 * (FNV-1a, never the PEM); for `true`, a random name (the key is this engine's alone).
 */
export function dpopCacheId(option: DpopOption): string {
  if (option === true || option.privateKey === undefined) return `engine:${base64url(crypto.getRandomValues(new Uint8Array(16)))}`;
  const key = option.privateKey;
  if (typeof key === 'string') return `pem:${fnv1a(key.replace(/\s+/g, ''))}:${option.signingAlg ?? ''}`;
  return `jwk:${JSON.stringify(publicMembers(key))}:${option.signingAlg ?? ''}`;
}

/** The public members RFC 7638 hashes, in its order. */
function publicMembers(jwk: JsonWebKeyLike): Record<string, string> {
  const out: Record<string, string> = {};
  for (const member of THUMBPRINT_MEMBERS[jwk.kty ?? ''] ?? []) out[member] = (jwk as Record<string, string>)[member] as string;
  return out;
}

function fnv1a(text: string): string {
  // Two 32-bit FNV-1a hashes (offsets differ): a name, not a security boundary (the key check is the thumbprint).
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/** The RFC 7638 thumbprint of a public JWK (SHA-256, base64url). */
export async function thumbprint(jwk: Readonly<Record<string, string>>): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(jwk)));
  return base64url(new Uint8Array(digest));
}

/**
 * Makes (`true`) or imports the key, once per engine. Failures are {@link ConfigurationError}s naming
 * `dpop.privateKey`, raised at first use (WebCrypto imports are asynchronous).
 */
export async function loadDpopKey(option: DpopOption): Promise<DpopSigner> {
  if (option === true || option.privateKey === undefined) {
    // RFC 9449 §4.2 needs an asymmetric key; the private half is never extractable.
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const exported = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKeyLike;
    return signer(pair.privateKey, 'ES256', exported);
  }
  const privateKey = option.privateKey;
  try {
    if (typeof privateKey === 'string') {
      // A PEM does not say its public half: imported once extractable to read it, then as a JWK, non-extractable.
      const readable = await importKey(privateKey, option.signingAlg, true);
      const jwk = (await crypto.subtle.exportKey('jwk', readable.key)) as JsonWebKeyLike;
      if (jwk.kty === 'RSA' && isShortRsa(jwk)) throw new ConfigurationError('dpop.privateKey', SHORT_RSA.replace('privateKey: ', ''));
      const alg = option.signingAlg ?? (jwk.kty === 'RSA' ? 'RS256' : readable.alg);
      const { key } = await importKey(jwk, alg);
      return signer(key, alg, jwk);
    }
    const alg = option.signingAlg ?? (privateKey.alg as SigningAlg | undefined) ?? algOf(privateKey) ?? 'ES256';
    const { key } = await importKey(privateKey, alg);
    await requireOwnPublicHalf(key, alg, privateKey);
    return signer(key, alg, privateKey);
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw new ConfigurationError('dpop.privateKey', 'could not be imported for signing DPoP proofs; check the key (EC P-256/P-384, RSA or Ed25519, PKCS#8 PEM or private JWK) and signingAlg');
  }
}

/**
 * A JWK's public members go into every proof (RFC 9449 §4.2): members of another key (WebCrypto
 * checks EC and OKP keys, not RSA's `n`) would make proofs no server verifies. Checked once, by signing.
 */
async function requireOwnPublicHalf(key: CryptoKey, alg: SigningAlg, jwk: JsonWebKeyLike): Promise<void> {
  const data = new Uint8Array(32);
  const signature = await crypto.subtle.sign(signParams(alg), key, data);
  const publicKey = await crypto.subtle.importKey('jwk', publicMembers(jwk), importParams(alg), false, ['verify']);
  if (!(await crypto.subtle.verify(signParams(alg), publicKey, signature, data))) {
    throw new ConfigurationError('dpop.privateKey', 'its public members are not those of its private key (a JWK put together from two keys?)');
  }
}

async function signer(key: CryptoKey, alg: SigningAlg, jwk: JsonWebKeyLike): Promise<DpopSigner> {
  const members = Object.freeze(publicMembers(jwk));
  if (Object.values(members).some((value) => typeof value !== 'string')) throw new ConfigurationError('dpop.privateKey', 'has no public key members');
  return Object.freeze({ key, alg, jwk: members, jkt: await thumbprint(members) });
}
