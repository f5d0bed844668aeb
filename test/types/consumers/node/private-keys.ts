// Private keys from node:crypto fit PrivateKeyInput without the DOM lib: a WebCrypto key, a JWK, a PEM.
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { withCrossAppAccess, type PrivateKeyInput } from 'cross-app-access';

const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
const { privateKey: keyObject } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keys: PrivateKeyInput[] = [
  pair.privateKey,
  keyObject.export({ format: 'jwk' }),
  keyObject.export({ format: 'pem', type: 'pkcs8' }).toString(),
];

export const authedFetches = keys.map((privateKey) =>
  withCrossAppAccess(fetch, {
    idToken: () => 'id-token',
    idp: { issuer: 'https://acme.okta.com', clientId: 'desk-agent', privateKey, keyId: process.env.IDP_KEY_ID },
    client: { clientId: 'wiki-app', privateKey, signingAlg: 'ES256' },
  }),
);
