/** Client authentication at the token endpoints (RFC 6749 §2.3, RFC 8414 §2). */
import { describe, expect, it } from 'vitest';
import {
  applyClientAuth,
  AS_AUTH_PREFERENCE,
  basicAuthorization,
  chooseClientAuth,
  IDP_AUTH_PREFERENCE,
  type ClientAuthMethod,
} from '../src/oauth/client-auth.js';
import { CrossAppAccessError } from '../src/errors.js';

/** The text inside the base64 of a Basic header. */
function beforeBase64(header: string): string {
  expect(header.startsWith('Basic ')).toBe(true);
  return Buffer.from(header.slice('Basic '.length), 'base64').toString('latin1');
}

/** How the conformance AS reads a Basic header: split at the first ':', decodeURIComponent each half. */
function decodeHalves(header: string): [string, string] {
  const raw = beforeBase64(header);
  const at = raw.indexOf(':');
  return [decodeURIComponent(raw.slice(0, at)), decodeURIComponent(raw.slice(at + 1))];
}

describe('basicAuthorization (RFC 6749 §2.3.1, Appendix B)', () => {
  it.each([
    ['s6Bh dRk', 'gX1f:Bar', 's6Bh%20dRk:gX1f%3ABar', 'Basic czZCaCUyMGRSazpnWDFmJTNBQmFy'],
    ['desk-agent', 'p@ss word/+1', 'desk-agent:p%40ss%20word%2F%2B1', 'Basic ZGVzay1hZ2VudDpwJTQwc3MlMjB3b3JkJTJGJTJCMQ=='],
    ['wiki app', 'k3y:v~1!', 'wiki%20app:k3y%3Av~1%21', 'Basic d2lraSUyMGFwcDprM3klM0F2fjElMjE='],
  ])('pinned vector %j / %j', (id, secret, raw, header) => {
    expect(basicAuthorization(id, secret)).toBe(header);
    expect(beforeBase64(header)).toBe(raw);
  });

  it('a space is %20, never +; a literal + is %2B', () => {
    const raw = beforeBase64(basicAuthorization('a b', 'c+d e'));
    expect(raw).toBe('a%20b:c%2Bd%20e');
    expect(raw).not.toContain('+');
  });

  it("! ' ( ) * are percent-encoded", () => {
    expect(beforeBase64(basicAuthorization("!'()*", "*)('!"))).toBe('%21%27%28%29%2A:%2A%29%28%27%21');
  });

  it('only A-Z a-z 0-9 - . _ ~ stay unencoded', () => {
    const unreserved = 'AZaz09-._~';
    expect(beforeBase64(basicAuthorization(unreserved, unreserved))).toBe(`${unreserved}:${unreserved}`);
    let all = '';
    for (let code = 0x20; code < 0x7f; code++) all += String.fromCharCode(code);
    const raw = beforeBase64(basicAuthorization(all, 'x'));
    expect(raw.split(':')).toHaveLength(2);
    expect(raw.replace(/%[0-9A-F]{2}/g, '')).toMatch(/^[A-Za-z0-9\-._~]*:x$/);
  });

  it.each([
    ['clïent', 'sécret'],
    ['秘密のクライアント', '秘密'],
    ['agent-😀', 'p😀ss:w0rd'],
    ['Ω≈ç√', 'ünïcødé spaced + plus'],
  ])('non-Latin-1 %j / %j round-trips through decodeURIComponent of each half', (id, secret) => {
    const header = basicAuthorization(id, secret);
    expect(beforeBase64(header)).toMatch(/^[A-Za-z0-9\-._~%]+:[A-Za-z0-9\-._~%]+$/);
    expect(decodeHalves(header)).toEqual([id, secret]);
  });

  it('base64 is the standard padded alphabet', () => {
    const header = basicAuthorization('a', 'bc');
    expect(header).toBe(`Basic ${Buffer.from('a:bc').toString('base64')}`);
    expect(header.slice(6)).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(header.slice(6).length % 4).toBe(0);
  });

  it('a colon in the client_id is encoded, so the halves split unambiguously', () => {
    const header = basicAuthorization('urn:client:1', 'x:y');
    expect(beforeBase64(header)).toBe('urn%3Aclient%3A1:x%3Ay');
    expect(decodeHalves(header)).toEqual(['urn:client:1', 'x:y']);
  });
});

describe('applyClientAuth (RFC 6749 §2.3)', () => {
  const credentials = { clientId: 'wiki app', clientSecret: 'k3y:v~1!' };

  const context = { audience: 'https://as.example', supportedAlgs: undefined, now: () => Date.now(), option: 'client' };

  async function apply(method: ClientAuthMethod, creds: { clientId: string; clientSecret?: string } = credentials) {
    const form = new URLSearchParams({ grant_type: 'g' });
    const headers: Record<string, string> = {};
    await applyClientAuth(method, creds, form, headers, context);
    return { form, headers };
  }

  it('client_secret_basic sets only the Authorization header', async () => {
    const { form, headers } = await apply('client_secret_basic');
    expect(headers).toEqual({ authorization: 'Basic d2lraSUyMGFwcDprM3klM0F2fjElMjE=' });
    expect([...form.keys()]).toEqual(['grant_type']);
    expect(form.has('client_id')).toBe(false);
    expect(form.has('client_secret')).toBe(false);
  });

  it('client_secret_post sets only client_id and client_secret in the body', async () => {
    const { form, headers } = await apply('client_secret_post');
    expect(headers).toEqual({});
    expect(form.get('client_id')).toBe('wiki app');
    expect(form.get('client_secret')).toBe('k3y:v~1!');
    expect([...form.keys()].sort()).toEqual(['client_id', 'client_secret', 'grant_type']);
  });

  it('none sets only client_id, and never a secret even when one is known', async () => {
    const { form, headers } = await apply('none');
    expect(headers).toEqual({});
    expect(form.get('client_id')).toBe('wiki app');
    expect(form.has('client_secret')).toBe(false);
    expect(form.toString()).not.toContain('k3y');
  });

  it.each(['client_secret_basic', 'client_secret_post', 'none'] as const)(
    '%s never puts a secret in both the header and the body',
    async (method) => {
      const { form, headers } = await apply(method);
      const inHeader = headers.authorization !== undefined;
      const inBody = form.has('client_secret');
      expect(inHeader && inBody).toBe(false);
    },
  );

  it('does not touch other headers or form fields', async () => {
    const form = new URLSearchParams({ grant_type: 'g', scope: 's' });
    const headers: Record<string, string> = { accept: 'application/json' };
    await applyClientAuth('client_secret_basic', credentials, form, headers, context);
    expect(headers.accept).toBe('application/json');
    expect(form.get('scope')).toBe('s');
    expect(form.get('grant_type')).toBe('g');
  });
});

describe('chooseClientAuth (RFC 8414 §2)', () => {
  const withSecret = { clientId: 'c', clientSecret: 's' };
  const noSecret = { clientId: 'c' };

  function rejection(fn: () => unknown): CrossAppAccessError {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(CrossAppAccessError);
      return error as CrossAppAccessError;
    }
    throw new Error('expected a CrossAppAccessError');
  }

  it('a configured method missing from the server list is unsupported_auth_method', () => {
    const error = rejection(() =>
      chooseClientAuth({ ...withSecret, authMethod: 'client_secret_post' }, ['client_secret_basic'], AS_AUTH_PREFERENCE, 'The AS', 'jwt_bearer'),
    );
    expect(error.code).toBe('unsupported_auth_method');
    expect(error.stage).toBe('jwt_bearer');
    expect(error.message).toContain('client_secret_post');
  });

  it('a configured method against an empty server list is rejected', () => {
    const error = rejection(() => chooseClientAuth({ ...withSecret, authMethod: 'client_secret_basic' }, [], AS_AUTH_PREFERENCE, 'The AS', 'jwt_bearer'));
    expect(error.code).toBe('unsupported_auth_method');
  });

  it('a configured method the server lists is used', () => {
    expect(
      chooseClientAuth({ ...withSecret, authMethod: 'client_secret_post' }, ['client_secret_basic', 'client_secret_post'], AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer'),
    ).toBe('client_secret_post');
  });

  it('a configured method is used when the server has no list', () => {
    expect(chooseClientAuth({ ...withSecret, authMethod: 'client_secret_post' }, undefined, AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe(
      'client_secret_post',
    );
    expect(chooseClientAuth({ ...noSecret, authMethod: 'none' }, undefined, IDP_AUTH_PREFERENCE, 'IdP', 'token_exchange')).toBe('none');
  });

  it('at the AS with a secret and no list, client_secret_basic', () => {
    expect(chooseClientAuth(withSecret, undefined, AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe('client_secret_basic');
  });

  it('at the AS with a secret, the first of the preference the server lists', () => {
    expect(chooseClientAuth(withSecret, ['none', 'client_secret_post', 'client_secret_basic'], AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe(
      'client_secret_basic',
    );
    expect(chooseClientAuth(withSecret, ['none', 'client_secret_post'], AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe('client_secret_post');
    expect(chooseClientAuth(withSecret, ['none', 'private_key_jwt'], AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe('none');
  });

  it('at the AS without a secret, none (listed or no list)', () => {
    expect(chooseClientAuth(noSecret, undefined, AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe('none');
    expect(chooseClientAuth(noSecret, ['client_secret_basic', 'none'], AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer')).toBe('none');
  });

  it('at the IdP, client_secret_post with a secret and none without', () => {
    expect(chooseClientAuth(withSecret, undefined, IDP_AUTH_PREFERENCE, 'IdP', 'token_exchange')).toBe('client_secret_post');
    expect(chooseClientAuth(noSecret, undefined, IDP_AUTH_PREFERENCE, 'IdP', 'token_exchange')).toBe('none');
  });

  it('at the IdP, metadata that lists only Basic wins over the post default', () => {
    expect(chooseClientAuth(withSecret, ['client_secret_basic'], IDP_AUTH_PREFERENCE, 'IdP', 'token_exchange')).toBe('client_secret_basic');
  });

  it('no usable method (secret-only list, no secret) is unsupported_auth_method', () => {
    const error = rejection(() => chooseClientAuth(noSecret, ['client_secret_basic', 'client_secret_post'], AS_AUTH_PREFERENCE, 'The AS', 'jwt_bearer'));
    expect(error.code).toBe('unsupported_auth_method');
    expect(error.stage).toBe('jwt_bearer');
  });

  it('no usable method (only unsupported methods listed) is unsupported_auth_method', () => {
    const error = rejection(() => chooseClientAuth(withSecret, ['private_key_jwt', 'tls_client_auth'], IDP_AUTH_PREFERENCE, 'The IdP', 'token_exchange'));
    expect(error.code).toBe('unsupported_auth_method');
    expect(error.stage).toBe('token_exchange');
  });

  it('the error message never contains the client secret', () => {
    const secret = 'S3CRET-VALUE-123';
    const error = rejection(() =>
      chooseClientAuth({ clientId: 'c', clientSecret: secret, authMethod: 'client_secret_post' }, ['client_secret_basic'], AS_AUTH_PREFERENCE, 'AS', 'jwt_bearer'),
    );
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error)).not.toContain(secret);
  });
});
