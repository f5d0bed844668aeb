import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { ConfigurationError } from '../errors.js';

/**
 * A key for {@link redisTokenStore}'s `encryptionKeys`: 32 random bytes, raw or base64 (standard or
 * URL-safe), e.g. `openssl rand -base64 32`.
 *
 * @example
 * ```ts
 * const key: EncryptionKey = process.env.XAA_TOKEN_KEY!; // base64 of 32 bytes
 * ```
 */
export type EncryptionKey = Uint8Array | string;

// Format tag of a sealed value; the layout is `x1.<generation>.<key id>.<iv>.<ciphertext+tag>`.
const VERSION = 'x1';
const IV_BYTES = 12; // NIST SP 800-38D §8.2: a 96-bit IV
const TAG_BYTES = 16; // the full 128-bit GCM tag

interface RingKey {
  readonly id: string;
  readonly bytes: Buffer;
}

/**
 * AES-256-GCM (NIST SP 800-38D) with a key ring: the first key seals, any key of the ring opens what
 * it sealed (each value names its key by id: a digest of the key, never the key). The associated
 * data binds a value to its cache key and generation, so a value copied under another key, or with
 * its generation changed, does not open.
 */
export class KeyRing {
  private readonly keys: readonly RingKey[];

  constructor(keys: readonly EncryptionKey[] | undefined, option = 'encryptionKeys') {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new ConfigurationError(option, 'expected a non-empty list of 32-byte keys (Uint8Array or base64); the first one encrypts, all of them decrypt');
    }
    this.keys = keys.map((key, i) => {
      const bytes = secretBytes(key, `${option}[${i}]`, 'AES-256-GCM');
      // 12 base64url characters of SHA-256 over a label and the key: names the key, reveals nothing of it.
      const id = createHash('sha256').update('cross-app-access key id\u0000').update(bytes).digest('base64url').slice(0, 12);
      return { id, bytes };
    });
  }

  /** A 32-byte secret derived from the first key for `label` (HMAC-SHA256): never the key itself. */
  derive(label: string): Buffer {
    return createHmac('sha256', this.keys[0]!.bytes).update(label).digest();
  }

  /** Seals `plaintext` for `context` (the cache key) as generation `generation`. */
  seal(plaintext: string, context: string, generation: string): string {
    const key = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.bytes, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(generation, key.id, context));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${generation}.${key.id}.${iv.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  /** Opens a sealed value for `context`; throws if it is malformed, names no key of the ring, or fails authentication. */
  open(value: string, context: string): { plaintext: string; generation: string } {
    const parts = value.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new Error('not a sealed value of a known format');
    const [, generation, id, ivText, sealedText] = parts as [string, string, string, string, string];
    const key = this.keys.find((k) => k.id === id);
    if (!key) throw new Error('sealed with a key that is not in encryptionKeys');
    const iv = Buffer.from(ivText, 'base64url');
    const sealed = Buffer.from(sealedText, 'base64url');
    if (iv.length !== IV_BYTES || sealed.length < TAG_BYTES) throw new Error('malformed sealed value');
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(generation, id, context));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plaintext = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    return { plaintext, generation };
  }
}

/** The prefix of every value of generation `generation` (what the compare-and-delete compares). */
export function generationPrefix(generation: string): string {
  return `${VERSION}.${generation}.`;
}

function associatedData(generation: string, keyId: string, context: string): Buffer {
  return Buffer.from(`${VERSION}\u0000${generation}\u0000${keyId}\u0000${context}`, 'utf8');
}

/** The 32 bytes of a key given as a Uint8Array or base64; a ConfigurationError naming `option` otherwise. */
export function secretBytes(key: unknown, option: string, use: string): Buffer {
  const bytes = keyBytes(key);
  if (bytes?.length !== 32) {
    throw new ConfigurationError(option, `expected 32 bytes for ${use} (a Uint8Array, or base64 of 32 bytes); got ${bytes === undefined ? 'neither' : `${bytes.length} bytes`}`);
  }
  return bytes;
}

function keyBytes(key: unknown): Buffer | undefined {
  if (key instanceof Uint8Array) return Buffer.from(key);
  if (typeof key !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(key.trim())) return undefined;
  return Buffer.from(key.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
