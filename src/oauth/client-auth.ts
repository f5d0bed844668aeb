import { signClientAssertion, type PrivateKeyInput, type SigningAlg } from './client-assertion.js';
import { CrossAppAccessError, type CrossAppAccessStage } from '../errors.js';

/**
 * Client authentication methods at a token endpoint (RFC 6749 §2.3, RFC 8414 §2).
 *
 * @example
 * ```ts
 * const idp = { tokenEndpoint, clientId: 'desk-agent', authMethod: 'none' satisfies ClientAuthMethod };
 * ```
 */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/**
 * A client's registration at one server (the IdP or the MCP authorization server): the fields that
 * `idp` and `client` share.
 *
 * @example
 * ```ts
 * const credentials: ClientCredentials = { clientId: 'wiki-app', authMethod: 'private_key_jwt', privateKey: pem, keyId: 'k1' };
 * ```
 */
export interface ClientCredentials {
  /** The client id at that server. */
  clientId: string;
  /** The client secret there, for a confidential client (never empty: omit it instead). */
  clientSecret?: string | undefined;
  /** How to authenticate there; by default chosen from the server's metadata and what is configured. */
  authMethod?: ClientAuthMethod | undefined;
  /** For `private_key_jwt`: a private `CryptoKey`, a private JWK, or a PKCS#8 PEM string. */
  privateKey?: PrivateKeyInput | undefined;
  /** For `private_key_jwt`: the `kid` of the key, as registered at the server. */
  keyId?: string | undefined;
  /** For `private_key_jwt`: the JWS algorithm; default from the key (EC → ES256/ES384, RSA → RS256, or PS256 when the server lists only PS256, Ed25519 → EdDSA). */
  signingAlg?: SigningAlg | undefined;
}

/** What signing a `private_key_jwt` assertion needs to know about the server and the options. */
export interface AssertionContext {
  audience: string;
  supportedAlgs: readonly string[] | undefined;
  /** Read at signing time, so a retried request's assertion is current. */
  now: () => number;
  /** The option path of the credentials, e.g. `client`. */
  option: string;
}

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * application/x-www-form-urlencoded for one Basic half (RFC 6749 §2.3.1, Appendix B): every UTF-8 byte
 * outside `A-Z a-z 0-9 - . _ ~` is percent-encoded, and a space is `%20`, never `+` (the MCP conformance AS checks this):
 * servers decode each half with `decodeURIComponent`, which keeps `+` literal.
 */
export function formEncodeCredential(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The `Authorization: Basic` value for a client (RFC 6749 §2.3.1).
 *
 * @example
 * ```ts
 * basicAuthorization('s6Bh dRk', 'gX1f:Bar'); // 'Basic czZCaCUyMGRSazpnWDFmJTNBQmFy'
 * ```
 */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  // Both halves are ASCII after form-encoding, so btoa is safe.
  return `Basic ${btoa(`${formEncodeCredential(clientId)}:${formEncodeCredential(clientSecret)}`)}`;
}

/**
 * Adds one method's credentials to a token request; never Basic and body credentials together (RFC 6749 §2.3),
 * never an empty secret, never credentials in the URL (RFC 6749 §2.3.1).
 */
export async function applyClientAuth(
  method: ClientAuthMethod,
  credentials: ClientCredentials,
  form: URLSearchParams,
  headers: Record<string, string>,
  context: AssertionContext,
): Promise<void> {
  switch (method) {
    case 'client_secret_basic':
      headers.authorization = basicAuthorization(credentials.clientId, credentials.clientSecret ?? '');
      return;
    case 'client_secret_post':
      form.set('client_id', credentials.clientId);
      form.set('client_secret', credentials.clientSecret ?? '');
      return;
    case 'private_key_jwt': {
      // RFC 7523 §2.2: the assertion authenticates the client; client_id names the same client.
      const assertion = await signClientAssertion({
        clientId: credentials.clientId,
        audience: context.audience,
        privateKey: credentials.privateKey as PrivateKeyInput,
        keyId: credentials.keyId,
        signingAlg: credentials.signingAlg,
        supportedAlgs: context.supportedAlgs,
        nowMs: context.now(),
        option: `${context.option}.privateKey`,
        owner: credentials,
      });
      form.set('client_id', credentials.clientId);
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set('client_assertion', assertion);
      return;
    }
    case 'none':
      form.set('client_id', credentials.clientId);
      return;
  }
}

/**
 * The method to use at a server (RFC 8414 §2). A configured method must be one the server
 * lists; without a configured method, the first of `preference` that the server allows and the
 * credentials can do. An absent list means `client_secret_basic` only (RFC 8414 §2), but we still
 * allow `none` for public clients and any configured method, since many servers omit the list.
 */
export function chooseClientAuth(
  credentials: ClientCredentials,
  supported: readonly string[] | undefined,
  preference: readonly ClientAuthMethod[],
  where: string,
  stage: CrossAppAccessStage,
): ClientAuthMethod {
  const hasSecret = credentials.clientSecret !== undefined;
  const hasKey = credentials.privateKey !== undefined;
  if (credentials.authMethod) {
    if (supported && !supported.includes(credentials.authMethod)) {
      throw new CrossAppAccessError(
        `${where} does not accept client authentication "${credentials.authMethod}" (it lists: ${supported.join(', ') || 'none'}). Change authMethod.`,
        { code: 'unsupported_auth_method', stage },
      );
    }
    return credentials.authMethod;
  }
  const usable = preference.filter((m) => (m === 'none' ? true : m === 'private_key_jwt' ? hasKey : hasSecret));
  const allowed = supported ? usable.filter((m) => supported.includes(m)) : usable;
  const chosen = allowed[0];
  if (!chosen) {
    throw new CrossAppAccessError(
      `${where} offers no client authentication this client can use (it lists: ${supported?.join(', ') || 'none'}; a client secret is ${hasSecret ? '' : 'not '}configured, a private key is ${hasKey ? '' : 'not '}configured).`,
      { code: 'unsupported_auth_method', stage },
    );
  }
  return chosen;
}

/**
 * At the MCP authorization server: a key first (MCP Enterprise-Managed Authorization (stable) §7.5.1), then Basic, as the
 * conformance AS requires.
 */
export const AS_AUTH_PREFERENCE: readonly ClientAuthMethod[] = ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none'];
/** At the IdP: a key first, then body credentials, as MCP Enterprise-Managed Authorization (stable) §4's example does. */
export const IDP_AUTH_PREFERENCE: readonly ClientAuthMethod[] = ['private_key_jwt', 'client_secret_post', 'client_secret_basic', 'none'];
