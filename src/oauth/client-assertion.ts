import { ConfigurationError } from '../errors.js';

/**
 * Asymmetric JWS algorithms for client assertions; never `none`, never HMAC (OpenID Connect Core §9:
 * signed with the client's private key).
 *
 * @example
 * ```ts
 * const client = { clientId: 'wiki-app', authMethod: 'private_key_jwt', privateKey: pem, signingAlg: 'PS256' satisfies SigningAlg };
 * ```
 */
export type SigningAlg = 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA';

// The key types are declared here rather than taken from the DOM lib (`CryptoKey`, `JsonWebKey`), so
// the shipped .d.ts compiles for a Node project without "DOM" in `lib`.

/**
 * A WebCrypto key, as far as the package reads it: the DOM's `CryptoKey` and `node:crypto`'s
 * `webcrypto.CryptoKey` both fit.
 *
 * @example
 * ```ts
 * const { privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
 * // private_key_jwt with a key that never leaves WebCrypto (RFC 7523 §2.2):
 * withCrossAppAccess(fetch, { ...options, client: { clientId: 'wiki-app', privateKey, keyId: 'k1' } });
 * ```
 */
export interface CryptoKeyLike {
  /** `'private'` for a signing key. */
  readonly type: string;
  /** Whether the key material can be exported (not needed here). */
  readonly extractable: boolean;
  /** The key's algorithm. */
  readonly algorithm: {
    /** The algorithm name, such as `'ECDSA'`, `'RSASSA-PKCS1-v1_5'`, `'RSA-PSS'` or `'Ed25519'`. */
    readonly name: string;
  };
  /** What the key may do; it must include `'sign'`. */
  readonly usages: readonly string[];
}

/**
 * A JSON Web Key (RFC 7517, RFC 7518 §6): the DOM's `JsonWebKey` and `node:crypto`'s fit.
 *
 * @example
 * ```ts
 * const privateKey: JsonWebKeyLike = JSON.parse(process.env.MCP_CLIENT_JWK!); // { kty: 'EC', crv: 'P-256', x, y, d }
 * withCrossAppAccess(fetch, { ...options, client: { clientId: 'wiki-app', privateKey, keyId: 'k1' } });
 * ```
 */
export interface JsonWebKeyLike {
  /** Key type: `'EC'`, `'RSA'` or `'OKP'` (RFC 7517 §4.1). */
  kty?: string;
  /** Curve of an EC or OKP key: `'P-256'`, `'P-384'`, `'Ed25519'` (RFC 7518 §6.2.1.1, RFC 8037). */
  crv?: string;
  /** The algorithm the key is meant for (RFC 7517 §4.4). */
  alg?: string;
  /** Public key use, `'sig'` (RFC 7517 §4.2). */
  use?: string;
  /** Key operations, such as `['sign']` (RFC 7517 §4.3). */
  key_ops?: string[];
  /** WebCrypto's extractable flag (W3C Web Cryptography API). */
  ext?: boolean;
  /** EC or OKP public key: x coordinate (RFC 7518 §6.2.1.2, RFC 8037). */
  x?: string;
  /** EC public key: y coordinate (RFC 7518 §6.2.1.3). */
  y?: string;
  /** The private key: EC or OKP private value, or RSA private exponent (RFC 7518 §6.2.2.1, §6.3.2.1). */
  d?: string;
  /** RSA modulus (RFC 7518 §6.3.1.1). */
  n?: string;
  /** RSA public exponent (RFC 7518 §6.3.1.2). */
  e?: string;
  /** RSA first prime factor (RFC 7518 §6.3.2.2). */
  p?: string;
  /** RSA second prime factor (RFC 7518 §6.3.2.3). */
  q?: string;
  /** RSA first factor CRT exponent (RFC 7518 §6.3.2.4). */
  dp?: string;
  /** RSA second factor CRT exponent (RFC 7518 §6.3.2.5). */
  dq?: string;
  /** RSA first CRT coefficient (RFC 7518 §6.3.2.6). */
  qi?: string;
  /** Symmetric key value (RFC 7518 §6.4.1); never accepted for signing here. */
  k?: string;
  /** RSA other primes info (RFC 7518 §6.3.2.7). */
  oth?: {
    /** Prime factor. */
    r?: string;
    /** Factor CRT exponent. */
    d?: string;
    /** Factor CRT coefficient. */
    t?: string;
  }[];
}

/**
 * A private key: a WebCrypto `CryptoKey` (usage `sign`), a private JWK, or a PKCS#8 PEM string.
 *
 * @example
 * ```ts
 * const privateKey: PrivateKeyInput = process.env.MCP_CLIENT_KEY_PEM!; // -----BEGIN PRIVATE KEY-----…
 * withCrossAppAccess(fetch, { ...options, client: { clientId: 'wiki-app', privateKey, keyId: 'k1' } });
 * ```
 */
export type PrivateKeyInput = CryptoKeyLike | JsonWebKeyLike | string;

interface AlgParams {
  import: AlgorithmIdentifier | RsaHashedImportParams | EcKeyImportParams;
  sign: AlgorithmIdentifier | EcdsaParams | RsaPssParams;
}

const PARAMS: Record<SigningAlg, AlgParams> = {
  ES256: { import: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  ES384: { import: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } },
  RS256: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } },
  PS256: { import: { name: 'RSA-PSS', hash: 'SHA-256' }, sign: { name: 'RSA-PSS', saltLength: 32 } },
  EdDSA: { import: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

const PEM = /^-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----\s*$/;

/** A real WebCrypto key (not merely shaped like one): those are used as they are. */
function isCryptoKey(value: unknown): value is CryptoKeyLike {
  return typeof CryptoKey !== 'undefined' && value instanceof CryptoKey;
}

/** Why a key cannot sign client assertions, or undefined (checked once, with the options). */
export function privateKeyProblem(key: unknown): string | undefined {
  if (typeof key === 'string') return PEM.test(key.trim()) ? undefined : 'expected a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)';
  if (isCryptoKey(key)) {
    if (key.type !== 'private') return 'expected a private CryptoKey';
    return key.usages.includes('sign') ? undefined : "expected a CryptoKey with the 'sign' usage";
  }
  if (typeof key === 'object' && key !== null) {
    const jwk = key as JsonWebKeyLike;
    if (jwk.kty === 'oct') return 'must be an asymmetric key: HMAC (kty "oct") is not allowed for private_key_jwt';
    if (jwk.kty !== 'EC' && jwk.kty !== 'RSA' && jwk.kty !== 'OKP') return 'expected a JWK with kty EC, RSA or OKP';
    if (typeof jwk.d !== 'string') return 'expected a private JWK (with "d")';
    return undefined;
  }
  return 'expected a CryptoKey, a private JWK or a PKCS#8 PEM string';
}

/** The algorithm a key signs with, when the key says (a JWK or a CryptoKey); RSA defaults to RS256. */
export function algOf(key: PrivateKeyInput): SigningAlg | undefined {
  if (isCryptoKey(key)) {
    const algorithm = key.algorithm as { name: string; namedCurve?: string };
    if (algorithm.name === 'ECDSA') return algorithm.namedCurve === 'P-384' ? 'ES384' : 'ES256';
    if (algorithm.name === 'RSA-PSS') return 'PS256';
    if (algorithm.name === 'RSASSA-PKCS1-v1_5') return 'RS256';
    if (algorithm.name === 'Ed25519') return 'EdDSA';
    return undefined;
  }
  if (typeof key === 'string') return undefined;
  if (key.kty === 'EC') return key.crv === 'P-384' ? 'ES384' : 'ES256';
  if (key.kty === 'OKP') return 'EdDSA';
  return 'RS256';
}

/**
 * The algorithm to sign with: configured, else the key's own; an RSA key uses PS256 when the server
 * lists PS256 but not RS256 (its `token_endpoint_auth_signing_alg_values_supported`).
 */
function chooseAlg(key: PrivateKeyInput, configured: SigningAlg | undefined, supported: readonly string[] | undefined): SigningAlg | undefined {
  if (configured) return configured;
  const own = algOf(key);
  const rsa = own === 'RS256' && !isCryptoKey(key);
  if (rsa && supported && !supported.includes('RS256') && supported.includes('PS256')) return 'PS256';
  return own;
}

/** The WebCrypto parameters to sign with `alg` (RFC 7518 §3). */
export function signParams(alg: SigningAlg): AlgorithmIdentifier | EcdsaParams | RsaPssParams {
  return PARAMS[alg].sign;
}

/** The WebCrypto import parameters of an algorithm's keys. */
export function importParams(alg: SigningAlg): Parameters<SubtleCrypto['importKey']>[2] {
  return PARAMS[alg].import;
}

const imported = new WeakMap<object, Map<string, Promise<{ key: CryptoKey; alg: SigningAlg }>>>();

async function importFor(key: PrivateKeyInput, alg: SigningAlg | undefined, owner: object): Promise<{ key: CryptoKey; alg: SigningAlg }> {
  // isCryptoKey checked `instanceof CryptoKey`.
  if (isCryptoKey(key)) return { key: key as CryptoKey, alg: alg ?? 'ES256' };
  const byAlg = imported.get(owner) ?? new Map<string, Promise<{ key: CryptoKey; alg: SigningAlg }>>();
  imported.set(owner, byAlg);
  const cacheKey = alg ?? 'auto';
  let pending = byAlg.get(cacheKey);
  if (!pending) {
    pending = importKey(key, alg);
    byAlg.set(cacheKey, pending);
    pending.catch(() => byAlg.delete(cacheKey));
  }
  return pending;
}

/**
 * Imports a private JWK or PKCS#8 PEM for signing with `alg` (for a PEM, each algorithm in turn when
 * none is given). Non-extractable unless `extractable` (DPoP reads a PEM's public half once).
 */
export async function importKey(key: JsonWebKeyLike | string, alg: SigningAlg | undefined, extractable = false): Promise<{ key: CryptoKey; alg: SigningAlg }> {
  if (typeof key !== 'string') {
    const chosen = alg ?? algOf(key) ?? 'ES256';
    // Drop JWK members WebCrypto would check against the algorithm (alg, key_ops, use).
    const { alg: _a, key_ops: _o, use: _u, ...material } = key;
    return { key: await crypto.subtle.importKey('jwk', material, PARAMS[chosen].import, extractable, ['sign']), alg: chosen };
  }
  const der = Uint8Array.from(atob((PEM.exec(key.trim())?.[1] ?? '').replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  // A PKCS#8 PEM does not say its type up front: the algorithms are tried in turn.
  for (const candidate of alg ? [alg] : (['ES256', 'ES384', 'RS256', 'EdDSA'] as const)) {
    try {
      return { key: await crypto.subtle.importKey('pkcs8', der, PARAMS[candidate].import, extractable, ['sign']), alg: candidate };
    } catch {
      // Not this algorithm: try the next one.
    }
  }
  throw new Error('unsupported key');
}

export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export const encodeJson = (value: unknown) => base64url(new TextEncoder().encode(JSON.stringify(value)));

export interface AssertionInput {
  clientId: string;
  /** The server's issuer (or its token endpoint, when no issuer is known). */
  audience: string;
  privateKey: PrivateKeyInput;
  keyId: string | undefined;
  signingAlg: SigningAlg | undefined;
  /** The server's `token_endpoint_auth_signing_alg_values_supported`, when it says. */
  supportedAlgs: readonly string[] | undefined;
  nowMs: number;
  /** Which option the key came from, for error messages (e.g. `client.privateKey`). */
  option: string;
  /** The frozen options object the key belongs to: imported keys are cached per owner. */
  owner: object;
}

/**
 * A `private_key_jwt` client assertion (RFC 7523 §2.2, §3; OpenID Connect Core §9): `iss` = `sub` = the client,
 * `aud` = the server's issuer, a new random `jti` every time (retries included), valid for 60 s.
 */
export async function signClientAssertion(input: AssertionInput): Promise<string> {
  const alg = chooseAlg(input.privateKey, input.signingAlg, input.supportedAlgs);
  let signer: { key: CryptoKey; alg: SigningAlg };
  try {
    signer = await importFor(input.privateKey, alg, input.owner);
  } catch {
    throw new ConfigurationError(input.option, `could not be imported for signing${alg ? ` with ${alg}` : ''}; check the key type or set signingAlg`);
  }
  const iat = Math.floor(input.nowMs / 1000);
  const header = { alg: signer.alg, typ: 'JWT', ...(input.keyId ? { kid: input.keyId } : {}) };
  const claims = {
    iss: input.clientId,
    sub: input.clientId,
    aud: input.audience,
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    iat,
    exp: iat + 60,
  };
  const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
  let signature: ArrayBuffer;
  try {
    signature = await crypto.subtle.sign(PARAMS[signer.alg].sign, signer.key, new TextEncoder().encode(signingInput));
  } catch {
    throw new ConfigurationError(input.option, `cannot sign with ${signer.alg}; check the key type or set signingAlg`);
  }
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}
