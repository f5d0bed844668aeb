/** A workload platform for tests (a cluster, a SPIFFE trust domain): its signing key, and the JWTs it issues. */
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export interface TestPlatform {
  readonly issuer: string;
  readonly publicKey: CryptoKey;
  /** A workload JWT: `sub`, for `aud`, expiring in `expiresIn` seconds (negative: already expired). */
  mint(claims: { sub: string; aud: string | string[]; expiresIn?: number }): Promise<string>;
}

export async function testPlatform(issuer = 'https://kubernetes.default.svc.cluster.local'): Promise<TestPlatform> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  return {
    issuer,
    publicKey,
    mint: ({ sub, aud, expiresIn = 600 }) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({}).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).setIssuer(issuer).setSubject(sub).setAudience(aud).setIssuedAt(now).setExpirationTime(now + expiresIn).sign(privateKey);
    },
  };
}
