// The option types promise that an optional option may be `undefined` (consumers/node/explicit-undefined.ts
// checks the types); this checks that validation agrees and treats it as absent.
import { describe, expect, it } from 'vitest';
import { crossAppAccess, withCrossAppAccess, type ClientOptions, type CrossAppAccessOptions, type IdpOptions } from '../../src/index.js';

type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];
// Listing every optional key is enforced: a new option fails to compile here until it is added.
type AllUndefined<T> = { [K in OptionalKeys<T>]: undefined };

const topLevel: AllUndefined<CrossAppAccessOptions> = {
  // Either idToken and idp or assertion is required at run time; each is optional in the type.
  idToken: undefined,
  idp: undefined,
  assertion: undefined,
  subjectTokenType: undefined,
  scope: undefined,
  resource: undefined,
  timeout: undefined,
  retry: undefined,
  renewBefore: undefined,
  defaultTokenLifetime: undefined,
  maxStepUps: undefined,
  maxReplayBodyBytes: undefined,
  maxCachedTokens: undefined,
  now: undefined,
  onEvent: undefined,
  checkIdJag: undefined,
  dpop: undefined,
  oauthFetch: undefined,
};
const idp: AllUndefined<IdpOptions> = {
  issuer: undefined,
  tokenEndpoint: undefined,
  clientSecret: undefined,
  authMethod: undefined,
  privateKey: undefined,
  keyId: undefined,
  signingAlg: undefined,
};
const client: AllUndefined<ClientOptions> = {
  issuer: undefined,
  idp: undefined,
  clientSecret: undefined,
  authMethod: undefined,
  privateKey: undefined,
  keyId: undefined,
  signingAlg: undefined,
};

const options: CrossAppAccessOptions = {
  ...topLevel,
  idToken: 'id-token',
  idp: { ...idp, tokenEndpoint: 'https://idp.example/token', clientId: 'desk-agent' },
  client: { ...client, clientId: 'wiki-app' },
};

describe('optional options given as undefined', () => {
  it('are accepted by both entry points, as if left out', () => {
    expect(() => withCrossAppAccess(fetch, options)).not.toThrow();
    expect(() => crossAppAccess(options)(fetch)).not.toThrow();
    expect(() => withCrossAppAccess(fetch, { ...options, retry: { retries: undefined, baseDelay: undefined, maxDelay: undefined } })).not.toThrow();
  });

  it('still leave a required secret missing', () => {
    const basic = { ...options, client: { ...options.client, authMethod: 'client_secret_basic' as const } };
    expect(() => withCrossAppAccess(fetch, basic)).toThrow(/client\.clientSecret/);
  });
});
