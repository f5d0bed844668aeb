import { base64url, encodeJson, signParams } from '../client-assertion.js';
import type { DpopSigner } from './key.js';

/** What one proof is for (RFC 9449 §4.2). */
export interface ProofClaims {
  /** The request's method. */
  readonly htm: string;
  /** The request's URL without query and fragment ({@link htuOf}). */
  readonly htu: string;
  /** The access token the request carries (resource requests only): its hash goes in as `ath`. */
  readonly ath?: string | undefined;
  /** The server's latest `DPoP-Nonce`, when it gave one (RFC 9449 §8, §9). */
  readonly nonce?: string | undefined;
  /** Epoch ms. */
  readonly nowMs: number;
}

// Fetch standard, "normalize a method": only these are upper-cased; any other goes out as written.
const NORMALIZED = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);

/** RFC 9449 §4.2 `htm`: the method as it goes out (fetch upper-cases only the methods it normalizes). */
function normalizedMethod(method: string): string {
  const upper = method.toUpperCase();
  return NORMALIZED.has(upper) ? upper : method;
}

/** RFC 9449 §4.2 `htu`: the target URI without query and fragment. */
export function htuOf(url: URL): string {
  const copy = new URL(url.href);
  copy.search = '';
  copy.hash = '';
  return copy.href;
}

const encoder = new TextEncoder();

/**
 * base64url of a JSON text. A proof's claims are ASCII (a URL's serialization is, and so are nonces,
 * RFC 9449 §8.1, and the other claims), so `btoa` takes the text as it is; anything else goes through UTF-8.
 */
function encodeAsciiJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (!/^[\x00-\x7f]*$/.test(text)) return encodeJson(value);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the access token's ASCII. */
export async function accessTokenHash(token: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))));
}

const headers = new WeakMap<DpopSigner, string>();

/** The proof header (RFC 9449 §4.2), the same for every proof of a key: encoded once. */
function encodedHeader(signer: DpopSigner): string {
  let encoded = headers.get(signer);
  if (encoded === undefined) headers.set(signer, (encoded = encodeJson({ typ: 'dpop+jwt', alg: signer.alg, jwk: signer.jwk })));
  return encoded;
}

/**
 * A DPoP proof JWT (RFC 9449 §4.2): header `typ` dpop+jwt, the algorithm and the public JWK; claims a
 * new random `jti`, `htm`, `htu`, `iat`, and `ath` and `nonce` when given. A new one for every request.
 */
export async function signProof(signer: DpopSigner, claims: ProofClaims): Promise<string> {
  const payload: Record<string, string | number> = {
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: normalizedMethod(claims.htm),
    htu: claims.htu,
    iat: Math.floor(claims.nowMs / 1000),
  };
  if (claims.ath !== undefined) payload.ath = claims.ath;
  if (claims.nonce !== undefined) payload.nonce = claims.nonce;
  const signingInput = `${encodedHeader(signer)}.${encodeAsciiJson(payload)}`;
  const signature = await crypto.subtle.sign(signParams(signer.alg), signer.key, encoder.encode(signingInput));
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}
