/**
 * WWW-Authenticate parsing (RFC 9110 §11.2, §11.6.1) and the Bearer fields the
 * package reads (RFC 6750 §3, RFC 9728 §5.1, RFC 9470).
 */
import { describe, expect, it } from 'vitest';
import { asksForDpopNonce, bearerChallenge, parseWwwAuthenticate } from '../src/oauth/challenge.js';
import { mulberry32 } from './helpers/prng.js';

function headers(...values: string[]): Headers {
  const h = new Headers();
  for (const v of values) h.append('WWW-Authenticate', v);
  return h;
}


describe('parseWwwAuthenticate (RFC 9110 §11.6.1)', () => {
  it('unescapes \\" and \\\\ inside quoted strings', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="say \\"hi\\" to C:\\\\dir"');
    expect(c?.params.realm).toBe('say "hi" to C:\\dir');
  });

  it('a comma inside a quoted string does not split the challenge', () => {
    const challenges = parseWwwAuthenticate('Bearer error_description="bad, very bad", DPoP algs="ES256"');
    expect(challenges).toHaveLength(2);
    expect(challenges[0]?.params.error_description).toBe('bad, very bad');
    expect(challenges[1]?.scheme).toBe('dpop');
  });

  it('an escaped quote followed by a comma stays inside the value', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="a\\", Basic x=\\"y", error="e"');
    expect(c?.params.realm).toBe('a", Basic x="y');
    expect(c?.params.error).toBe('e');
  });

  it('several challenges in one header', () => {
    expect(parseWwwAuthenticate('Bearer realm="a", error="invalid_token", DPoP algs="ES256 PS256"')).toEqual([
      { scheme: 'bearer', params: { realm: 'a', error: 'invalid_token' } },
      { scheme: 'dpop', params: { algs: 'ES256 PS256' } },
    ]);
  });

  it('token68 challenges (Basic, Negotiate with padding)', () => {
    expect(parseWwwAuthenticate('Basic YWxhZGRpbjpvcGVuc2VzYW1l')).toEqual([
      { scheme: 'basic', params: {}, token68: 'YWxhZGRpbjpvcGVuc2VzYW1l' },
    ]);
    expect(parseWwwAuthenticate('Negotiate abc==')).toEqual([{ scheme: 'negotiate', params: {}, token68: 'abc==' }]);
  });

  it('a token68 challenge followed by a Bearer challenge', () => {
    const challenges = parseWwwAuthenticate('Negotiate abc==, Bearer error="invalid_token"');
    expect(challenges).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc==' },
      { scheme: 'bearer', params: { error: 'invalid_token' } },
    ]);
  });

  it('scheme and parameter names are case-insensitive (lower-cased)', () => {
    const [c] = parseWwwAuthenticate('BeArEr ReSoUrCe_MeTaDaTa="https://x.example/m", ERROR="invalid_token"');
    expect(c?.scheme).toBe('bearer');
    expect(c?.params).toEqual({ resource_metadata: 'https://x.example/m', error: 'invalid_token' });
  });

  it('parameter values keep their case', () => {
    const [c] = parseWwwAuthenticate('Bearer scope="Files:Read"');
    expect(c?.params.scope).toBe('Files:Read');
  });

  it('first occurrence of a parameter wins', () => {
    const [c] = parseWwwAuthenticate('Bearer error="first", error="second", ERROR="third"');
    expect(c?.params.error).toBe('first');
  });

  it('spaces around = are allowed', () => {
    const [c] = parseWwwAuthenticate('Bearer realm = "a" ,  error =invalid_token');
    expect(c?.params).toEqual({ realm: 'a', error: 'invalid_token' });
  });

  it('unquoted token values', () => {
    const [c] = parseWwwAuthenticate('Bearer error=invalid_token, max_age=300');
    expect(c?.params).toEqual({ error: 'invalid_token', max_age: '300' });
  });

  it('a Bearer with no parameters followed by another challenge', () => {
    expect(parseWwwAuthenticate('Bearer, DPoP algs="ES256"')).toEqual([
      { scheme: 'bearer', params: {} },
      { scheme: 'dpop', params: { algs: 'ES256' } },
    ]);
  });

  it('a lone scheme is a challenge with no parameters', () => {
    expect(parseWwwAuthenticate('Bearer')).toEqual([{ scheme: 'bearer', params: {} }]);
  });

  it('repeated headers joined by Headers.get with ", "', () => {
    const h = headers('Basic realm="simple"', 'Bearer error="invalid_token", resource_metadata="https://x.example/prm"');
    expect(h.get('www-authenticate')).toBe(
      'Basic realm="simple", Bearer error="invalid_token", resource_metadata="https://x.example/prm"',
    );
    expect(parseWwwAuthenticate(h.get('www-authenticate'))).toEqual([
      { scheme: 'basic', params: { realm: 'simple' } },
      { scheme: 'bearer', params: { error: 'invalid_token', resource_metadata: 'https://x.example/prm' } },
    ]);
  });

  it('RFC 9110 §11.6.1 example with quoted escapes and two challenges', () => {
    const challenges = parseWwwAuthenticate('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"');
    expect(challenges).toEqual([
      { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'basic', params: { realm: 'simple' } },
    ]);
  });

  it('an unterminated quoted string yields the rest of the header', () => {
    expect(parseWwwAuthenticate('Bearer realm="abc')).toEqual([{ scheme: 'bearer', params: { realm: 'abc' } }]);
    expect(parseWwwAuthenticate('Bearer error="invalid_token", realm="abc, DPoP algs="ES256')).toEqual([
      { scheme: 'bearer', params: { error: 'invalid_token', realm: 'abc, DPoP algs=' } },
    ]);
  });

  it('a trailing backslash in an unterminated quoted string does not throw', () => {
    expect(() => parseWwwAuthenticate('Bearer realm="abc\\')).not.toThrow();
    expect(parseWwwAuthenticate('Bearer realm="abc\\')[0]?.scheme).toBe('bearer');
  });

  it('empty, null and undefined give no challenges', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate(null)).toEqual([]);
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate(' ,, \t ,')).toEqual([]);
  });

  it('garbage headers never throw', () => {
    for (const h of ['=', '"', '"""', '=,=,=', ',Bearer', 'Bearer ==', 'Bearer "x"', 'Bearer a="', '\\', '\u0000\u00ff', 'Bearer a=b=c']) {
      const result = parseWwwAuthenticate(h);
      expect(Array.isArray(result)).toBe(true);
    }
  });

  it('a parameter named __proto__ does not pollute objects', () => {
    const [c] = parseWwwAuthenticate('Bearer __proto__="x", polluted="yes", error="e"');
    expect(c?.params.error).toBe('e');
    expect(Object.getPrototypeOf(c?.params)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('fuzz of 500 random headers (fixed seed): no throw, well-formed challenges', () => {
    const random = mulberry32(0x5eed990);
    const alphabet = ['Bearer', 'DPoP', 'Basic', ' ', ' ', '\t', ',', '=', '"', '\\', 'a', 'Z', '0', '~', '/', '+', '_', 'é', '秘', '😀', 'realm', 'error', '==', '(', ';'];
    for (let i = 0; i < 500; i++) {
      const length = Math.floor(random() * 30);
      let header = '';
      for (let j = 0; j < length; j++) header += alphabet[Math.floor(random() * alphabet.length)];
      let result: ReturnType<typeof parseWwwAuthenticate> | undefined;
      expect(() => {
        result = parseWwwAuthenticate(header);
      }, header).not.toThrow();
      expect(Array.isArray(result), header).toBe(true);
      for (const c of result ?? []) {
        expect(c.scheme, header).not.toBe('');
        expect(c.scheme, header).toBe(c.scheme.toLowerCase());
        expect(typeof c.params, header).toBe('object');
        for (const name of Object.keys(c.params)) expect(name, header).toBe(name.toLowerCase());
      }
    }
  });
});

describe('bearerChallenge (RFC 6750 §3, RFC 9728 §5.1)', () => {
  it('extracts resource_metadata, scope, error, error_description, max_age, acr_values', () => {
    const h = headers(
      'Bearer error="insufficient_user_authentication", error_description="needs \\"mfa\\", now", ' +
        'resource_metadata="https://mcp.tools.example/.well-known/oauth-protected-resource/team-a/mcp", ' +
        'scope="files:read files:write", max_age=300, acr_values="urn:mace:incommon:iap:silver phr"',
    );
    expect(bearerChallenge(h)).toEqual({
      resourceMetadata: 'https://mcp.tools.example/.well-known/oauth-protected-resource/team-a/mcp',
      scope: 'files:read files:write',
      error: 'insufficient_user_authentication',
      errorDescription: 'needs "mfa", now',
      maxAge: '300',
      acrValues: 'urn:mace:incommon:iap:silver phr',
    });
  });

  it('omits fields the challenge does not carry', () => {
    expect(bearerChallenge(headers('Bearer realm="x"'))).toEqual({});
    expect(bearerChallenge(headers('Bearer'))).toEqual({});
  });

  it('finds Bearer after other challenges, case-insensitively', () => {
    const h = headers('Basic realm="x", DPoP algs="ES256"', 'BEARER Error="invalid_token", Scope="a b"');
    expect(bearerChallenge(h)).toEqual({ error: 'invalid_token', scope: 'a b' });
  });

  it('does not read another scheme’s parameters as Bearer ones', () => {
    const h = headers('DPoP error="invalid_dpop_proof", scope="dpop-only", Bearer resource_metadata="https://x.example/prm"');
    expect(bearerChallenge(h)).toEqual({ resourceMetadata: 'https://x.example/prm' });
  });

  it('takes the first Bearer challenge when there are two', () => {
    const h = headers('Bearer scope="first"', 'Bearer scope="second"');
    expect(bearerChallenge(h)?.scope).toBe('first');
  });

  it('a Bearer with no params followed by another challenge is still found', () => {
    expect(bearerChallenge(headers('Bearer, DPoP algs="ES256"'))).toEqual({});
  });

  it('no Bearer challenge gives undefined', () => {
    expect(bearerChallenge(new Headers())).toBeUndefined();
    expect(bearerChallenge(headers('Basic realm="x"'))).toBeUndefined();
    expect(bearerChallenge(headers('Negotiate abc=='))).toBeUndefined();
    expect(bearerChallenge(headers('BearerX realm="x"'))).toBeUndefined();
  });

  it('a DPoP challenge (RFC 9449 §7.1) is read when there is no Bearer one; a Bearer one wins', () => {
    expect(bearerChallenge(headers('DPoP algs="ES256"', 'Negotiate abc=='))).toEqual({});
    expect(bearerChallenge(headers('DPoP error="insufficient_scope", scope="a b", resource_metadata="https://r/prm"'))).toEqual({ error: 'insufficient_scope', scope: 'a b', resourceMetadata: 'https://r/prm' });
    expect(bearerChallenge(headers('DPoP error="use_dpop_nonce", Bearer scope="x"'))).toEqual({ scope: 'x' });
  });

  it('asksForDpopNonce: only a DPoP challenge with error="use_dpop_nonce" (RFC 9449 §9)', () => {
    expect(asksForDpopNonce(headers('DPoP error="use_dpop_nonce", algs="ES256"'))).toBe(true);
    expect(asksForDpopNonce(headers('Bearer error="use_dpop_nonce"'))).toBe(false);
    expect(asksForDpopNonce(headers('DPoP error="invalid_dpop_proof"'))).toBe(false);
    expect(asksForDpopNonce(new Headers())).toBe(false);
  });

  it('a value that merely contains "Bearer" is not a Bearer challenge', () => {
    expect(bearerChallenge(headers('Basic realm="Bearer error=x"'))).toBeUndefined();
  });

  it('garbage headers never throw', () => {
    const random = mulberry32(42);
    const alphabet = 'Bearer ,="\\\tabc=_'.split('');
    for (let i = 0; i < 200; i++) {
      let value = '';
      const length = Math.floor(random() * 25);
      for (let j = 0; j < length; j++) value += alphabet[Math.floor(random() * alphabet.length)];
      const h = new Headers();
      h.set('www-authenticate', value);
      expect(() => bearerChallenge(h), value).not.toThrow();
    }
  });
});
