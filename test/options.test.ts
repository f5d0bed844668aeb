/**
 * Option validation through the public API (DESIGN "Public contract"): no empty secret, https except
 * on loopback, no credentials in a URL, no secret in a message. Every bad option throws synchronously,
 * when the wrapper is made.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigurationError,
  CrossAppAccessError,
  crossAppAccess,
  withCrossAppAccess,
  type CrossAppAccessOptions,
} from '../src/index.js';

type Loose = Record<string, unknown> & { idp: Record<string, unknown>; client: Record<string, unknown> };

function valid(): Loose {
  return {
    idToken: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln',
    idp: { tokenEndpoint: 'https://idp.example/token', clientId: 'idp-client' },
    client: { clientId: 'mcp-client' },
  };
}

const noFetch = () => Promise.reject(new Error('no network in unit tests'));

/** Builds a wrapper both ways and returns the ConfigurationError both threw (they must agree). */
function configError(options: unknown): ConfigurationError {
  const errors: unknown[] = [];
  for (const make of [
    () => withCrossAppAccess(noFetch, options as CrossAppAccessOptions),
    () => crossAppAccess(options as CrossAppAccessOptions),
  ]) {
    let thrown: unknown;
    try {
      make();
    } catch (error) {
      thrown = error;
    }
    expect(thrown, 'expected a synchronous ConfigurationError').toBeInstanceOf(ConfigurationError);
    errors.push(thrown);
  }
  const [a, b] = errors as [ConfigurationError, ConfigurationError];
  expect(a).toBeInstanceOf(CrossAppAccessError);
  expect(a.code).toBe('invalid_option');
  expect(a.stage).toBe('config');
  expect(b.option).toBe(a.option);
  expect(b.message).toBe(a.message);
  expect(a.message).toContain(a.option);
  return a;
}

function withChange(change: (o: Loose) => void): Loose {
  const o = valid();
  change(o);
  return o;
}

function accepted(options: unknown): void {
  expect(() => withCrossAppAccess(noFetch, options as CrossAppAccessOptions)).not.toThrow();
  expect(() => crossAppAccess(options as CrossAppAccessOptions)).not.toThrow();
}

describe('withCrossAppAccess / crossAppAccess: idToken', () => {
  it('a missing idToken is rejected, naming idToken', () => {
    expect(configError(withChange((o) => delete o.idToken)).option).toBe('idToken');
  });

  it('an empty idToken string is rejected', () => {
    expect(configError(withChange((o) => (o.idToken = ''))).option).toBe('idToken');
  });

  it('a numeric idToken is rejected', () => {
    expect(configError(withChange((o) => (o.idToken = 42))).option).toBe('idToken');
  });

  it('a function idToken is accepted', () => {
    accepted(withChange((o) => (o.idToken = () => 'token')));
  });
});

describe('withCrossAppAccess / crossAppAccess: idp', () => {
  it('a missing idp is rejected', () => {
    expect(configError(withChange((o) => delete (o as Partial<Loose>).idp)).option).toBe('idp');
  });

  it('a missing client is rejected', () => {
    expect(configError(withChange((o) => delete (o as Partial<Loose>).client)).option).toBe('client');
  });

  it('idp without issuer and tokenEndpoint is rejected', () => {
    const error = configError(withChange((o) => delete o.idp.tokenEndpoint));
    expect(error.option).toBe('idp');
    expect(error.message).toMatch(/issuer/);
    expect(error.message).toMatch(/tokenEndpoint/);
  });

  it('idp without clientId is rejected', () => {
    expect(configError(withChange((o) => delete o.idp.clientId)).option).toBe('idp.clientId');
  });

  it('a non-loopback http tokenEndpoint is rejected, mentioning https', () => {
    const error = configError(withChange((o) => (o.idp.tokenEndpoint = 'http://idp.example.com/token')));
    expect(error.option).toBe('idp.tokenEndpoint');
    expect(error.message).toMatch(/https/);
  });

  it('a non-loopback http issuer is rejected', () => {
    const error = configError(
      withChange((o) => {
        delete o.idp.tokenEndpoint;
        o.idp.issuer = 'http://idp.example.com';
      }),
    );
    expect(error.option).toBe('idp.issuer');
    expect(error.message).toMatch(/https/);
  });

  it.each(['http://localhost:8080/token', 'http://127.0.0.1/token', 'http://[::1]/token'])('loopback http %s is accepted', (url) => {
    accepted(withChange((o) => (o.idp.tokenEndpoint = url)));
  });

  it.each(['http://0.0.0.0/token', 'http://localhost.evil.example/token', 'http://127.0.0.1.nip.io/token'])(
    'look-alike host %s is not loopback',
    (url) => {
      expect(configError(withChange((o) => (o.idp.tokenEndpoint = url))).option).toBe('idp.tokenEndpoint');
    },
  );

  it('a non-http(s) scheme is rejected', () => {
    expect(configError(withChange((o) => (o.idp.tokenEndpoint = 'ftp://idp.example/token'))).option).toBe('idp.tokenEndpoint');
  });

  it('a URL with credentials is rejected', () => {
    const error = configError(withChange((o) => (o.idp.tokenEndpoint = 'https://u:p@idp.example/token')));
    expect(error.option).toBe('idp.tokenEndpoint');
    expect(error.message).toMatch(/credentials/);
  });

  it('a URL with a fragment is rejected', () => {
    const error = configError(withChange((o) => (o.idp.tokenEndpoint = 'https://idp.example/token#frag')));
    expect(error.option).toBe('idp.tokenEndpoint');
    expect(error.message).toMatch(/fragment/);
  });

  it('a relative URL is rejected', () => {
    const error = configError(withChange((o) => (o.idp.tokenEndpoint = '/oauth2/token')));
    expect(error.option).toBe('idp.tokenEndpoint');
    expect(error.message).toMatch(/absolute/);
  });
});

describe('withCrossAppAccess / crossAppAccess: client credentials', () => {
  it('an empty idp.clientSecret is rejected', () => {
    expect(configError(withChange((o) => (o.idp.clientSecret = ''))).option).toBe('idp.clientSecret');
  });

  it('an empty client.clientSecret is rejected', () => {
    expect(configError(withChange((o) => (o.client.clientSecret = ''))).option).toBe('client.clientSecret');
  });

  it('a credential with a lone UTF-16 surrogate (not encodable as UTF-8) is rejected up front', () => {
    const error = configError(withChange((o) => (o.client.clientSecret = 'abc\uD800')));
    expect(error.option).toBe('client.clientSecret');
    expect(error.message).toMatch(/surrogate/);
    expect(configError(withChange((o) => (o.idp.clientId = '\uDC00x'))).option).toBe('idp.clientId');
  });

  it('client_secret_basic without a secret is rejected', () => {
    const error = configError(withChange((o) => (o.client.authMethod = 'client_secret_basic')));
    expect(error.option).toBe('client.clientSecret');
    expect(error.message).toContain('client_secret_basic');
  });

  it('client_secret_post at the IdP without a secret is rejected', () => {
    expect(configError(withChange((o) => (o.idp.authMethod = 'client_secret_post'))).option).toBe('idp.clientSecret');
  });

  it("authMethod 'none' with a secret is rejected", () => {
    const error = configError(
      withChange((o) => {
        o.idp.authMethod = 'none';
        o.idp.clientSecret = 'x';
      }),
    );
    expect(error.option).toBe('idp.authMethod');
  });

  it('an unknown authMethod is rejected', () => {
    expect(configError(withChange((o) => (o.client.authMethod = 'client_secret_jwt'))).option).toBe('client.authMethod');
  });

  it('a non-https client.issuer is rejected', () => {
    expect(configError(withChange((o) => (o.client.issuer = 'http://as.example'))).option).toBe('client.issuer');
  });

  it('full credentials on both legs are accepted', () => {
    accepted(
      withChange((o) => {
        o.idp = { issuer: 'https://idp.example', clientId: 'i', clientSecret: 'a', authMethod: 'client_secret_basic' };
        o.client = { clientId: 'c', clientSecret: 'b', authMethod: 'client_secret_post', issuer: 'https://as.example/t' };
      }),
    );
  });
});

describe('withCrossAppAccess / crossAppAccess: scope, resource, timeout, onEvent', () => {
  it.each(['files:read "admin"', 'files\\read', 'a\tb'])('RFC 6749 §3.3: scope string %j with invalid characters is rejected', (scope) => {
    expect(configError(withChange((o) => (o.scope = scope))).option).toMatch(/^scope/);
  });

  it.each([['files:read', 'a"b'], ['a\\b'], ['a b'], ['']])('RFC 6749 §3.3: scope array %j with an invalid entry is rejected', (...scope) => {
    expect(configError(withChange((o) => (o.scope = scope))).option).toMatch(/^scope/);
  });

  it('RFC 6749 §3.3: scope as a string or an array is accepted', () => {
    accepted(withChange((o) => (o.scope = 'files:read files:write')));
    accepted(withChange((o) => (o.scope = ['files:read', 'files:write'])));
  });

  it('RFC 6749 §3.3: a scope that is neither string nor array is rejected', () => {
    expect(configError(withChange((o) => (o.scope = 7))).option).toBe('scope');
  });

  it('a non-https resource is rejected', () => {
    const error = configError(withChange((o) => (o.resource = 'http://mcp.example.com/mcp')));
    expect(error.option).toBe('resource');
    expect(error.message).toMatch(/https/);
  });

  it('an https resource is accepted', () => {
    accepted(withChange((o) => (o.resource = 'https://mcp.example.com/mcp')));
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1000'])('timeout %j is rejected', (timeout) => {
    expect(configError(withChange((o) => (o.timeout = timeout))).option).toBe('timeout');
  });

  it('a positive integer timeout is accepted', () => {
    accepted(withChange((o) => (o.timeout = 5000)));
  });

  it('onEvent that is not a function is rejected', () => {
    expect(configError(withChange((o) => (o.onEvent = 'log'))).option).toBe('onEvent');
  });

  it.each([null, undefined, 'options', 42, true])('non-object options %j are rejected', (options) => {
    expect(configError(options).option).toBe('options');
  });

  it('an array as options is rejected', () => {
    expect(configError([]).option).toBe('options');
  });
});

describe('withCrossAppAccess / crossAppAccess: first argument', () => {
  it.each([undefined, null, 'fetch', {}])('withCrossAppAccess(%j, …) throws a TypeError', (fetch) => {
    expect(() => withCrossAppAccess(fetch as unknown as typeof globalThis.fetch, valid() as unknown as CrossAppAccessOptions)).toThrow(TypeError);
  });

  it('crossAppAccess(options)(notAFunction) throws a TypeError', () => {
    const middleware = crossAppAccess(valid() as unknown as CrossAppAccessOptions);
    expect(() => middleware('fetch' as unknown as typeof globalThis.fetch)).toThrow(TypeError);
  });
});

describe('withCrossAppAccess / crossAppAccess: secrets stay out of errors', () => {
  const SECRET = 'S3CRET-VALUE-123';

  it.each<[string, (o: Loose) => void]>([
    ['client secret with a bad idp endpoint', (o) => {
      o.client.clientSecret = SECRET;
      o.idp.tokenEndpoint = 'http://idp.example.com/token';
    }],
    ['idp secret with authMethod none', (o) => {
      o.idp.clientSecret = SECRET;
      o.idp.authMethod = 'none';
    }],
    ['client secret with authMethod none', (o) => {
      o.client.clientSecret = SECRET;
      o.client.authMethod = 'none';
    }],
    ['secret as URL password', (o) => (o.idp.tokenEndpoint = `https://user:${SECRET}@idp.example/token`)],
    ['secret as URL user', (o) => (o.idp.tokenEndpoint = `https://${SECRET}@idp.example/token`)],
    ['secret in a resource with a fragment', (o) => (o.resource = `https://mcp.example/mcp?key=${SECRET}#x`)],
    ['secret passed as authMethod by mistake', (o) => (o.client.authMethod = SECRET)],
    ['client secret with a non-string clientId', (o) => {
      o.client.clientSecret = SECRET;
      o.client.clientId = 5;
    }],
    ['secret as idToken with a bad timeout', (o) => {
      o.idToken = SECRET;
      o.timeout = -5;
    }],
    ['secret in a bad scope entry', (o) => (o.scope = [`${SECRET}"`])],
    ['secret in a bad scope string', (o) => (o.scope = `${SECRET}\\`)],
  ])('no secret in the message: %s', (_name, change) => {
    const error = configError(withChange(change));
    expect(error.message).not.toContain(SECRET);
    expect(JSON.stringify(error)).not.toContain(SECRET);
    expect(String(error.stack)).not.toContain(SECRET);
  });
});

describe('withCrossAppAccess / crossAppAccess: valid configuration', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('the minimal configuration does not throw and makes no request', () => {
    const fetchSpy = vi.fn(noFetch);
    const globalFetch = vi.spyOn(globalThis, 'fetch');
    const wrapped = withCrossAppAccess(fetchSpy, valid() as unknown as CrossAppAccessOptions);
    expect(typeof wrapped).toBe('function');
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(globalFetch).not.toHaveBeenCalled();
  });

  it('an idp issuer (discovered later) causes no request at construction', () => {
    const fetchSpy = vi.fn(noFetch);
    const globalFetch = vi.spyOn(globalThis, 'fetch');
    const options = withChange((o) => {
      o.idp = { issuer: 'https://idp.example', clientId: 'i' };
      o.idToken = () => {
        throw new Error('idToken must not be called at construction');
      };
      o.resource = 'https://mcp.example/mcp';
    });
    const middleware = crossAppAccess(options as unknown as CrossAppAccessOptions);
    const wrapped = middleware(fetchSpy);
    withCrossAppAccess(fetchSpy, options as unknown as CrossAppAccessOptions);
    expect(typeof wrapped).toBe('function');
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(globalFetch).not.toHaveBeenCalled();
  });

  it('the caller’s options object is not mutated', () => {
    const options = withChange((o) => (o.scope = ['b', 'a', 'b']));
    const snapshot = JSON.stringify(options);
    withCrossAppAccess(noFetch, options as unknown as CrossAppAccessOptions);
    expect(JSON.stringify(options)).toBe(snapshot);
  });
});

describe('withCrossAppAccess / crossAppAccess: misspelt options', () => {
  it('an unknown nested key (client.clientSecrett) is an error naming it, with the key it resembles', () => {
    const error = configError(withChange((o) => ((o.client as Record<string, unknown>).clientSecrett = 'typo')));
    expect(error.option).toBe('client.clientSecrett');
    expect(error.message).toBe('Invalid cross-app-access option client.clientSecrett: unknown option (did you mean clientSecret?)');
    expect(error.message).not.toContain('typo');
  });

  it('an unknown top-level key (resorce) is an error naming it', () => {
    const error = configError(withChange((o) => ((o as Record<string, unknown>).resorce = 'https://mcp.example/mcp')));
    expect(error.option).toBe('resorce');
    expect(error.message).toBe('Invalid cross-app-access option resorce: unknown option (did you mean resource?)');
  });

  it('an unknown key in idp is an error; a case slip is matched too', () => {
    const error = configError(withChange((o) => ((o.idp as Record<string, unknown>).tokenEndPoint = 'https://x/token')));
    expect(error.option).toBe('idp.tokenEndPoint');
    expect(error.message).toContain('did you mean tokenEndpoint?');
  });

  it('an unknown key in retry is named; a key like no other gets no suggestion', () => {
    const error = configError(withChange((o) => (o.retry = { retires: 3 })));
    expect(error.option).toBe('retry.retires');
    expect(error.message).toContain('did you mean retries?');
    const unlike = configError(withChange((o) => ((o as Record<string, unknown>).fetchImplementation = fetch)));
    expect(unlike.message).toBe('Invalid cross-app-access option fetchImplementation: unknown option');
  });
});

describe('withCrossAppAccess / crossAppAccess: mistakes that look valid', () => {
  it.each<[string, (o: Loose) => void]>([
    ['idToken', (o) => delete o.idToken],
    ['idp', (o) => delete (o as Partial<Loose>).idp],
    ['client', (o) => delete (o as Partial<Loose>).client],
    ['idp.clientId', (o) => delete o.idp.clientId],
    ['client.clientId', (o) => delete o.client.clientId],
  ])('a missing %s says "is required"', (option, change) => {
    const error = configError(withChange(change));
    expect(error.option).toBe(option);
    expect(error.message).toMatch(new RegExp(`^Invalid cross-app-access option ${option.replace('.', '\\.')}: is required`));
    expect(error.message).not.toMatch(/received undefined/);
  });

  it.each([1, 10, 30, 99])('timeout: %i (seconds meant) is refused, saying the unit is milliseconds', (timeout) => {
    const error = configError(withChange((o) => (o.timeout = timeout)));
    expect(error.option).toBe('timeout');
    expect(error.message).toContain('milliseconds');
    expect(error.message).toContain(`for ${timeout} seconds write ${timeout * 1000}`);
  });

  it('timeout: 100 and more is accepted', () => {
    accepted(withChange((o) => (o.timeout = 100)));
    accepted(withChange((o) => (o.timeout = 30_000)));
  });

  it('defaultTokenLifetime: 3600 (seconds meant) is refused; one minute and more is accepted', () => {
    const error = configError(withChange((o) => (o.defaultTokenLifetime = 3600)));
    expect(error.option).toBe('defaultTokenLifetime');
    expect(error.message).toContain('milliseconds');
    accepted(withChange((o) => (o.defaultTokenLifetime = 60_000)));
  });

  it('renewBefore: 60 (seconds meant) is refused; 0 (no early renewal) and 1000 and more are accepted', () => {
    const error = configError(withChange((o) => (o.renewBefore = 60)));
    expect(error.option).toBe('renewBefore');
    expect(error.message).toContain('milliseconds');
    accepted(withChange((o) => (o.renewBefore = 0)));
    accepted(withChange((o) => (o.renewBefore = 1000)));
  });

  it.each<[string, string | string[], string]>([
    ['a comma-separated string', 'files:read,files:write', 'scope'],
    ['a string with ", "', 'files:read, files:write', 'scope'],
    ['an array entry with a comma', ['files:read,files:write'], 'scope[0]'],
  ])('scope as %s is refused, saying space-separated', (_name, scope, option) => {
    const error = configError(withChange((o) => (o.scope = scope)));
    expect(error.option).toBe(option);
    expect(error.message).toContain('space-separated');
  });

  it('idp with both issuer and tokenEndpoint is refused, saying which to keep', () => {
    const error = configError(withChange((o) => (o.idp.issuer = 'https://idp.example')));
    expect(error.option).toBe('idp');
    expect(error.message).toMatch(/both issuer and tokenEndpoint/);
    expect(error.message).toMatch(/keep issuer .*or tokenEndpoint/);
  });

  it('oauthFetch must be a function; a fetch is accepted', () => {
    expect(configError(withChange((o) => (o.oauthFetch = 'fetch'))).option).toBe('oauthFetch');
    accepted(withChange((o) => (o.oauthFetch = fetch)));
  });
});

describe('lists: idp, client and resource take one or a list', () => {
  const idpA = { issuer: 'https://acme.example', clientId: 'gw' };
  const idpB = { issuer: 'https://globex.example', clientId: 'gw-9' };
  const asA = { issuer: 'https://auth-a.example', clientId: 'gw-a', clientSecret: 's' };
  const asB = { issuer: 'https://auth-b.example', clientId: 'gw-b', clientSecret: 's' };

  it('lists of IdPs, registrations and resources are accepted', () => {
    accepted(withChange((o) => {
      o.idp = [idpA, idpB] as never;
      o.client = [asA, asB, { ...asB, idp: idpB.issuer, clientId: 'gw-b-globex' }] as never;
      o.resource = ['https://mcp-a.example/mcp', 'https://mcp-b.example/mcp'];
    }));
  });

  it('an entry is checked as a single one is, named by its index', () => {
    expect(configError(withChange((o) => (o.idp = [idpA, { issuer: 'https://globex.example' }] as never))).option).toBe('idp[1].clientId');
    expect(configError(withChange((o) => (o.client = [asA, { ...asB, clientSecret: '' }] as never))).option).toBe('client[1].clientSecret');
    expect(configError(withChange((o) => (o.resource = ['https://mcp.example/mcp', 'http://mcp.example/mcp']))).option).toBe('resource[1]');
    const misspelt = configError(withChange((o) => (o.client = [asA, { ...asB, clientSecrett: 's' }] as never)));
    expect(misspelt.option).toBe('client[1].clientSecrett');
    expect(misspelt.message).toContain('did you mean clientSecret?');
  });

  it('in a list of IdPs each needs its issuer (ID tokens are routed by iss), none twice', () => {
    expect(configError(withChange((o) => (o.idp = [idpA, { tokenEndpoint: 'https://globex.example/token', clientId: 'x' }] as never))).option).toBe('idp[1].issuer');
    expect(configError(withChange((o) => (o.idp = [idpA, { ...idpA, clientId: 'other' }] as never))).message).toMatch(/appears twice/);
  });

  it('in a list of registrations each names its authorization server; an idp must be a listed IdP; no pair twice', () => {
    expect(configError(withChange((o) => (o.client = [asA, { clientId: 'x', clientSecret: 's' }] as never))).option).toBe('client[1].issuer');
    expect(configError(withChange((o) => (o.client = [asA, { ...asA }] as never))).message).toMatch(/a second time/);
    const unknownIdp = configError(withChange((o) => {
      o.idp = [idpA, idpB] as never;
      o.client = [{ ...asA, idp: 'https://initech.example' }] as never;
    }));
    expect(unknownIdp.option).toBe('client[0].idp');
  });

  it('empty lists, a resource listed twice, and a list of IdPs with a subject token that names no issuer are refused', () => {
    expect(configError(withChange((o) => (o.idp = [] as never))).option).toBe('idp');
    expect(configError(withChange((o) => (o.client = [] as never))).option).toBe('client');
    expect(configError(withChange((o) => (o.resource = []))).option).toBe('resource');
    expect(configError(withChange((o) => (o.resource = ['https://mcp.example/mcp', 'https://mcp.example/mcp']))).message).toMatch(/twice/);
    const saml = configError(withChange((o) => {
      o.idp = [idpA, idpB] as never;
      o.subjectTokenType = 'saml2';
    }));
    expect(saml.option).toBe('idp');
    expect(saml.message).toMatch(/one engine per IdP/);
  });
});
