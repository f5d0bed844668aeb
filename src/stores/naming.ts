import { createHmac } from 'node:crypto';
import { secretBytes, type KeyRing } from './encryption.js';

// The label the default naming secret is derived under, from the first encryption key.
const DERIVED_NAMING_LABEL = 'cross-app-access redis naming key v1';

/**
 * Redis names from user keys and cache keys: HMAC-SHA256 under a naming secret (RFC 2104), so that
 * someone who can read Redis (a replica, a backup, `MONITOR`) cannot test a list of user keys
 * against the names, nor tell which resource a user holds a token for, without the secret.
 */
export class Namer {
  private readonly secret: Buffer;

  /** `namingKey` (32 bytes) if given, else a secret derived from the first encryption key. */
  constructor(namingKey: unknown, ring: KeyRing) {
    this.secret = namingKey === undefined ? ring.derive(DERIVED_NAMING_LABEL) : secretBytes(namingKey, 'namingKey', 'HMAC-SHA256 naming');
  }

  /** The user's part of every name of theirs (22 base64url characters: 132 bits). */
  user(user: string): string {
    return this.mac(`user\u0000${user}`).slice(0, 22);
  }

  /** A cache key's part of its token's and lock's names. */
  key(key: string): string {
    return this.mac(`key\u0000${key}`);
  }

  private mac(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url');
  }
}
