/**
 * The server side of DPoP (RFC 9449) for the loopback servers: proof verification with `jose` (§4.3),
 * `jti` replay detection, nonces on demand (§8, §9), and a record of every proof received.
 */
import { randomBytes, createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWTPayload } from 'jose';

const ALGS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
/** RFC 9449 §11.1: how far a proof's `iat` may be from the server's clock. */
const IAT_WINDOW_SECONDS = 300;

/** A proof as the server received it. */
export interface ReceivedProof {
  readonly method: string;
  readonly url: string;
  readonly header: Record<string, unknown>;
  readonly claims: JWTPayload & { htm?: string; htu?: string; ath?: string; nonce?: string };
  /** The thumbprint of the key that signed it. */
  readonly jkt: string;
}

/** Why a proof was refused: the OAuth / DPoP error to answer with. */
export interface ProofFailure {
  readonly error: 'invalid_dpop_proof' | 'use_dpop_nonce';
  readonly description: string;
}

export interface DpopVerifier {
  /** Mutable: demand a nonce (a proof without the current one is answered use_dpop_nonce). */
  requireNonce: boolean;
  /** The nonce proofs must carry while {@link requireNonce}; rotated by {@link rotateNonce}. */
  readonly nonce: string;
  rotateNonce(): void;
  /** Every proof that verified, in order. */
  readonly proofs: ReceivedProof[];
  /** Verifies one request's proof; `accessToken` for a resource request (its `ath`). */
  verify(proof: string | string[] | undefined, request: { method: string; url: string; accessToken?: string }): Promise<ReceivedProof | ProofFailure>;
}

/** RFC 9449 §4.2 `htu`: the URL without query and fragment. */
function htu(url: string): string {
  const parsed = new URL(url);
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

export function createDpopVerifier(): DpopVerifier {
  const seen = new Set<string>();
  const fail = (error: ProofFailure['error'], description: string): ProofFailure => ({ error, description });
  const verifier: DpopVerifier = {
    requireNonce: false,
    nonce: randomBytes(16).toString('base64url'),
    rotateNonce() {
      (verifier as { nonce: string }).nonce = randomBytes(16).toString('base64url');
    },
    proofs: [],
    async verify(proof, request) {
      // RFC 9449 §4.3 step 1: exactly one DPoP header.
      if (typeof proof !== 'string' || proof === '') return fail('invalid_dpop_proof', 'exactly one DPoP header is required');
      let payload: ReceivedProof['claims'];
      let header: Record<string, unknown>;
      try {
        const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ALGS });
        payload = verified.payload;
        header = verified.protectedHeader as Record<string, unknown>;
      } catch (err) {
        return fail('invalid_dpop_proof', `proof rejected: ${(err as Error).message}`);
      }
      const jwk = header.jwk as Record<string, unknown>;
      if ('d' in jwk) return fail('invalid_dpop_proof', 'the jwk in the header is a private key');
      if (typeof payload.jti !== 'string' || payload.jti === '') return fail('invalid_dpop_proof', 'no jti');
      if (payload.htm !== request.method) return fail('invalid_dpop_proof', `htm ${String(payload.htm)} is not ${request.method}`);
      if (payload.htu !== htu(request.url)) return fail('invalid_dpop_proof', `htu ${String(payload.htu)} is not ${htu(request.url)}`);
      const now = Math.floor(Date.now() / 1000);
      if (typeof payload.iat !== 'number' || Math.abs(payload.iat - now) > IAT_WINDOW_SECONDS) return fail('invalid_dpop_proof', 'iat missing or out of range');
      if (request.accessToken !== undefined) {
        const ath = createHash('sha256').update(request.accessToken, 'ascii').digest('base64url');
        if (payload.ath !== ath) return fail('invalid_dpop_proof', 'ath does not match the access token');
      }
      if (verifier.requireNonce && payload.nonce !== verifier.nonce) return fail('use_dpop_nonce', 'a DPoP nonce is required');
      if (seen.has(payload.jti)) return fail('invalid_dpop_proof', 'jti replayed');
      seen.add(payload.jti);
      const received: ReceivedProof = { method: request.method, url: request.url, header, claims: payload, jkt: await calculateJwkThumbprint(jwk as never, 'sha256') };
      verifier.proofs.push(received);
      return received;
    },
  };
  return verifier;
}

export function isProofFailure(value: ReceivedProof | ProofFailure): value is ProofFailure {
  return 'error' in value;
}
