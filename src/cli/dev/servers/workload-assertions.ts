/**
 * Workload identity at the loopback authorization server (SEP-1933): an RFC 7523 jwt-bearer
 * assertion issued by a trusted platform (a Kubernetes cluster, a SPIFFE trust domain, a cloud
 * metadata server) instead of an IdP's ID-JAG.
 */
import { decodeJwt, jwtVerify, type CryptoKey } from 'jose';
import { splitScope } from './idp.js';

/** A platform whose workload JWTs an authorization server accepts. */
export interface TrustedPlatform {
  issuer: string;
  publicKey: CryptoKey;
  /** Clients that may redeem this platform's JWTs; another gets `unauthorized_client`. Default: any. */
  clients?: readonly string[];
  /** Scopes its workloads may get; asking for another is `invalid_scope`. Default: any. */
  scopes?: readonly string[];
}

/** What a verified workload assertion grants. */
export interface WorkloadGrant {
  sub: string;
  iss: string;
  scopes: string[];
}

/** A refusal, as the token endpoint sends it (RFC 6749 §5.2). */
export interface WorkloadRefusal {
  status: number;
  error: string;
  description: string;
}

/** The trusted platform an assertion names as its issuer (read, then verified with that platform's key); else undefined. */
export function platformOf(assertion: string, platforms: readonly TrustedPlatform[]): TrustedPlatform | undefined {
  try {
    const iss = decodeJwt(assertion).iss;
    return platforms.find((platform) => platform.issuer === iss);
  } catch {
    return undefined;
  }
}

/**
 * RFC 7523 §3: the signature by the platform's key, `aud` = this server's issuer, `exp` in the
 * future, a `sub`; then the client and the scope this platform's workloads may use.
 */
export async function verifyWorkloadAssertion(
  assertion: string,
  platform: TrustedPlatform,
  { audience, clientId, scope }: { audience: string; clientId: string; scope: string | undefined },
): Promise<WorkloadGrant | WorkloadRefusal> {
  let sub: string;
  try {
    const { payload } = await jwtVerify(assertion, platform.publicKey, {
      issuer: platform.issuer,
      audience,
      algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      requiredClaims: ['sub', 'exp'],
    });
    sub = payload.sub!;
  } catch (err) {
    return { status: 400, error: 'invalid_grant', description: `workload assertion rejected: ${(err as Error).message}` };
  }
  if (platform.clients && !platform.clients.includes(clientId)) {
    return { status: 400, error: 'unauthorized_client', description: 'this client may not redeem this platform\'s workload assertions' };
  }
  const scopes = splitScope(scope);
  const refused = platform.scopes ? scopes.filter((s) => !platform.scopes!.includes(s)) : [];
  if (refused.length > 0) return { status: 400, error: 'invalid_scope', description: `scope not allowed for workloads: ${refused.join(' ')}` };
  return { sub, iss: platform.issuer, scopes };
}
