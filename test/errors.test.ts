/**
 * The CrossAppAccessError family (DESIGN "Errors"; never a secret in them): fields, toJSON, and class checks
 * that work across the ESM and CJS builds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, CrossAppAccessError, OAuthResponseError, untrustedText } from '../src/errors.js';

type ErrorsModule = {
  CrossAppAccessError: typeof CrossAppAccessError;
  ConfigurationError: typeof ConfigurationError;
  OAuthResponseError: typeof OAuthResponseError;
};

const root = fileURLToPath(new URL('..', import.meta.url));
const esmPath = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const cjsPath = fileURLToPath(new URL('../dist/index.cjs', import.meta.url));

let esm: ErrorsModule;
let cjs: ErrorsModule;

beforeAll(async () => {
  if (!existsSync(esmPath) || !existsSync(cjsPath)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
  // A computed specifier keeps tsc from depending on dist/ existing at type-check time.
  esm = (await import(new URL('../dist/index.js', import.meta.url).href)) as ErrorsModule;
  cjs = createRequire(import.meta.url)(cjsPath) as ErrorsModule;
}, 120_000);

describe('CrossAppAccessError', () => {
  it('carries code, stage, status, error, errorDescription, errorUri and cause', () => {
    const cause = new Error('socket hang up');
    const error = new CrossAppAccessError('The AS refused the grant.', {
      code: 'oauth_error',
      stage: 'jwt_bearer',
      status: 400,
      error: 'invalid_grant',
      errorDescription: 'jti replayed',
      errorUri: 'https://as.example/errors/1',
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('CrossAppAccessError');
    expect(error.message).toBe('The AS refused the grant.');
    expect(error.code).toBe('oauth_error');
    expect(error.stage).toBe('jwt_bearer');
    expect(error.status).toBe(400);
    expect(error.error).toBe('invalid_grant');
    expect(error.errorDescription).toBe('jti replayed');
    expect(error.errorUri).toBe('https://as.example/errors/1');
    expect(error.cause).toBe(cause);
  });

  it('optional fields are undefined when absent, and there is no cause', () => {
    const error = new CrossAppAccessError('m', { code: 'timeout', stage: 'discovery' });
    expect(error.status).toBeUndefined();
    expect(error.error).toBeUndefined();
    expect(error.errorDescription).toBeUndefined();
    expect(error.errorUri).toBeUndefined();
    expect('cause' in error).toBe(false);
  });

  it('toJSON has every field but no stack and no cause', () => {
    const cause = new Error('inner secret S3CRET-VALUE-123');
    const error = new CrossAppAccessError('outer', { code: 'network_error', stage: 'token_exchange', status: 502, cause });
    const json = error.toJSON();
    expect(json).toEqual({
      name: 'CrossAppAccessError',
      message: 'outer',
      code: 'network_error',
      stage: 'token_exchange',
      status: 502,
      error: undefined,
      errorDescription: undefined,
      errorUri: undefined,
    });
    expect(json).not.toHaveProperty('stack');
    expect(json).not.toHaveProperty('cause');
    const text = JSON.stringify(error);
    expect(text).not.toContain('S3CRET-VALUE-123');
    expect(text).not.toContain('stack');
    expect(text).not.toContain(' at ');
  });

  it('a plain Error, null, a primitive and a look-alike object are not instances', () => {
    expect(new Error('x')).not.toBeInstanceOf(CrossAppAccessError);
    expect(CrossAppAccessError[Symbol.hasInstance](null)).toBe(false);
    expect(CrossAppAccessError[Symbol.hasInstance]('code')).toBe(false);
    expect({ name: 'CrossAppAccessError', code: 'timeout', stage: 'request' } instanceof CrossAppAccessError).toBe(false);
  });

  it('class checks work across the CJS and ESM builds (Symbol brand)', () => {
    expect(cjs.CrossAppAccessError).not.toBe(esm.CrossAppAccessError);
    const fromCjs = new cjs.CrossAppAccessError('m', { code: 'timeout', stage: 'request' });
    const fromEsm = new esm.CrossAppAccessError('m', { code: 'timeout', stage: 'request' });
    expect(fromCjs instanceof esm.CrossAppAccessError).toBe(true);
    expect(fromEsm instanceof cjs.CrossAppAccessError).toBe(true);
    expect(fromCjs instanceof CrossAppAccessError).toBe(true);
    expect(new CrossAppAccessError('m', { code: 'timeout', stage: 'request' }) instanceof cjs.CrossAppAccessError).toBe(true);
    expect(new Error('x') instanceof cjs.CrossAppAccessError).toBe(false);
    expect(new Error('x') instanceof esm.CrossAppAccessError).toBe(false);
  });

  it('a subclass from the other build is a CrossAppAccessError of this build', () => {
    expect(new cjs.ConfigurationError('idp', 'bad') instanceof esm.CrossAppAccessError).toBe(true);
    expect(new esm.OAuthResponseError('m', { code: 'oauth_error', stage: 'jwt_bearer' }) instanceof cjs.CrossAppAccessError).toBe(true);
  });

  it('subclass checks work across the CJS and ESM builds', () => {
    expect(new cjs.ConfigurationError('idp', 'bad') instanceof esm.ConfigurationError).toBe(true);
    expect(new esm.ConfigurationError('idp', 'bad') instanceof cjs.ConfigurationError).toBe(true);
    expect(new cjs.OAuthResponseError('m', { code: 'oauth_error', stage: 'jwt_bearer' }) instanceof esm.OAuthResponseError).toBe(true);
    expect(new cjs.ConfigurationError('idp', 'bad') instanceof esm.OAuthResponseError).toBe(false);
  });
});

describe('ConfigurationError', () => {
  it('is a CrossAppAccessError with code invalid_option, stage config, and the option path', () => {
    const error = new ConfigurationError('idp.tokenEndpoint', 'must use https:');
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfigurationError');
    expect(error.code).toBe('invalid_option');
    expect(error.stage).toBe('config');
    expect(error.option).toBe('idp.tokenEndpoint');
    expect(error.message).toContain('idp.tokenEndpoint');
    expect(error.message).toContain('must use https:');
    expect(error.toJSON()).toMatchObject({ name: 'ConfigurationError', code: 'invalid_option', stage: 'config' });
  });

  it('is not an OAuthResponseError', () => {
    expect(new ConfigurationError('x', 'y')).not.toBeInstanceOf(OAuthResponseError);
  });

  it('a plain CrossAppAccessError is not a ConfigurationError', () => {
    expect(new CrossAppAccessError('m', { code: 'invalid_option', stage: 'config' })).not.toBeInstanceOf(ConfigurationError);
  });
});

describe('OAuthResponseError', () => {
  it('RFC 6749 §5.2: is a CrossAppAccessError carrying the OAuth error fields', () => {
    const error = new OAuthResponseError('The IdP refused the ID token.', {
      code: 'login_required',
      stage: 'token_exchange',
      status: 400,
      error: 'invalid_grant',
    });
    expect(error).toBeInstanceOf(OAuthResponseError);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).not.toBeInstanceOf(ConfigurationError);
    expect(error.name).toBe('OAuthResponseError');
    expect(error.code).toBe('login_required');
    expect(error.error).toBe('invalid_grant');
    expect(error.status).toBe(400);
  });

  it('a plain Error is not an OAuthResponseError', () => {
    expect(new Error('x')).not.toBeInstanceOf(OAuthResponseError);
  });
});

describe('untrustedText', () => {
  it('strips control characters so server text cannot forge log lines', () => {
    expect(untrustedText('bad\r\nINFO forged\u0000\u007f')).toBe('bad  INFO forged  ');
  });

  it('caps the length', () => {
    const text = untrustedText('x'.repeat(1000), 300);
    expect(text).toHaveLength(301);
    expect(text?.endsWith('…')).toBe(true);
  });

  it('non-strings are undefined', () => {
    expect(untrustedText(42)).toBeUndefined();
    expect(untrustedText({ error: 'x' })).toBeUndefined();
  });
});
