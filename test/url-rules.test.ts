/** Where secrets and tokens may go (https except on loopback; RFC 6749 §2.3.1; RFC 8707 §2; RFC 9728 §3.3). */
import { describe, expect, it } from 'vitest';
import { CrossAppAccessError } from '../src/errors.js';
import { insecureUrlReason, isLoopbackHost, isWithinResource, requireSecureUrl, resourceBoundary, respelledLoopback } from '../src/url-rules.js';

const within = (target: string, resource: string) => isWithinResource(new URL(target), new URL(resource));

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LOCALHOST', '127.0.0.1', '127.0.0.2', '127.255.255.254', '[::1]'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    'example.com',
    '0.0.0.0',
    '10.0.0.1',
    '128.0.0.1',
    '1.127.0.0.1',
    '127.0.0.1.nip.io',
    'localhost.evil.example',
    'evillocalhost',
    'app.localhost',
    '[::2]',
    '[::]',
    '',
  ])('%j is not loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });

  it('URL-normalised loopback forms are recognised via URL.hostname', () => {
    expect(isLoopbackHost(new URL('http://127.1/').hostname)).toBe(true);
    expect(isLoopbackHost(new URL('http://0x7f000001/').hostname)).toBe(true);
    expect(isLoopbackHost(new URL('http://[0:0:0:0:0:0:0:1]/').hostname)).toBe(true);
  });
});

describe('insecureUrlReason', () => {
  it.each(['https://idp.example/token', 'https://idp.example:8443/t', 'http://localhost:8080/token', 'http://127.0.0.1/token', 'http://[::1]:3000/token'])(
    '%s may carry secrets',
    (url) => {
      expect(insecureUrlReason(new URL(url))).toBeUndefined();
    },
  );

  it.each(['http://idp.example/token', 'http://0.0.0.0/token', 'http://localhost.evil.example/token', 'http://10.0.0.1/'])(
    'non-loopback http %s is refused, mentioning https',
    (url) => {
      expect(insecureUrlReason(new URL(url))).toMatch(/https/);
    },
  );

  it.each(['ftp://idp.example/token', 'ws://localhost/', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/plain,x'])(
    'other scheme %s is refused',
    (url) => {
      expect(insecureUrlReason(new URL(url))).toMatch(/https/);
    },
  );

  it.each(['https://u:p@idp.example/token', 'https://u@idp.example/token', 'https://:p@idp.example/token', 'http://u:p@localhost/token'])(
    'credentials in %s are refused',
    (url) => {
      expect(insecureUrlReason(new URL(url))).toMatch(/credentials/);
    },
  );
});

describe('requireSecureUrl', () => {
  it('returns the parsed URL when secure', () => {
    expect(requireSecureUrl('https://as.example/token', 'the token endpoint', 'discovery').href).toBe('https://as.example/token');
  });

  it('an insecure URL is insecure_url at the given stage', () => {
    let error: unknown;
    try {
      requireSecureUrl('http://as.example/token', 'the token endpoint', 'jwt_bearer');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect((error as CrossAppAccessError).code).toBe('insecure_url');
    expect((error as CrossAppAccessError).stage).toBe('jwt_bearer');
  });

  it('the message does not repeat URL credentials', () => {
    let error: unknown;
    try {
      requireSecureUrl('https://user:S3CRET-VALUE-123@as.example/token', 'the token endpoint', 'discovery');
    } catch (e) {
      error = e;
    }
    expect((error as CrossAppAccessError).code).toBe('insecure_url');
    expect((error as CrossAppAccessError).message).not.toContain('S3CRET-VALUE-123');
  });

  it('a relative URL is rejected', () => {
    expect(() => requireSecureUrl('/token', 'the token endpoint', 'discovery')).toThrow(CrossAppAccessError);
  });
});

describe('isWithinResource (RFC 8707 §2; RFC 9728 §3.3)', () => {
  const resource = 'https://mcp.example/api';

  it.each(['https://mcp.example/api', 'https://mcp.example/api/', 'https://mcp.example/api/mcp', 'https://mcp.example/api/mcp/deep?x=1#f'])(
    '/api covers %s',
    (target) => {
      expect(within(target, resource)).toBe(true);
    },
  );

  it.each([
    ['a sibling prefix', 'https://mcp.example/api2'],
    ['a sibling prefix with a path', 'https://mcp.example/api2/mcp'],
    ['the parent', 'https://mcp.example/'],
    ['another path', 'https://mcp.example/other/api'],
    ['another origin', 'https://evil.example/api/mcp'],
    ['a subdomain', 'https://sub.mcp.example/api/mcp'],
    ['another port', 'https://mcp.example:8443/api/mcp'],
    ['http instead of https', 'http://mcp.example/api/mcp'],
    ['dot segments escaping the path', 'https://mcp.example/api/../admin'],
    ['encoded dot segments escaping the path', 'https://mcp.example/api/%2e%2e/admin'],
    ['an encoded slash after a sibling prefix', 'https://mcp.example/api%2F..%2Fadmin'],
    ['a different case', 'https://mcp.example/API/mcp'],
  ])('/api does not cover %s (%s)', (_what, target) => {
    expect(within(target, resource)).toBe(false);
  });

  it('the default port is the same origin', () => {
    expect(within('https://mcp.example:443/api/mcp', resource)).toBe(true);
  });

  it.each(['https://mcp.example/', 'https://mcp.example'])('root resource %s covers everything on its origin', (root) => {
    expect(within('https://mcp.example/', root)).toBe(true);
    expect(within('https://mcp.example/anything/at/all', root)).toBe(true);
    expect(within('https://mcp.example/api2', root)).toBe(true);
    expect(within('https://other.example/', root)).toBe(false);
    expect(within('http://mcp.example/', root)).toBe(false);
  });

  it('a resource with a trailing slash covers paths below it', () => {
    expect(within('https://mcp.example/mcp/x', 'https://mcp.example/mcp/')).toBe(true);
    expect(within('https://mcp.example/mcp/', 'https://mcp.example/mcp/')).toBe(true);
    expect(within('https://mcp.example/mcpx', 'https://mcp.example/mcp/')).toBe(false);
  });

  it('loopback resources compare the port', () => {
    expect(within('http://localhost:3000/mcp', 'http://localhost:3000/mcp')).toBe(true);
    expect(within('http://localhost:3001/mcp', 'http://localhost:3000/mcp')).toBe(false);
  });
});

describe('respelledLoopback: a URL outside the resource only by its loopback host spelling', () => {
  const scope = resourceBoundary(new URL('http://127.0.0.1:3000/mcp'));
  const respelled = (url: string) => respelledLoopback(new URL(url), scope)?.href;
  it.each([
    ['http://localhost:3000/mcp', 'http://127.0.0.1:3000/mcp'],
    ['http://[::1]:3000/mcp', 'http://127.0.0.1:3000/mcp'],
    ['http://localhost:3000/mcp/sub?x=1', 'http://127.0.0.1:3000/mcp/sub?x=1'],
  ])('%s is %s', (url, expected) => {
    expect(respelled(url)).toBe(expected);
  });
  it.each([
    'http://127.0.0.1:3000/mcp', // inside: not a mistake
    'http://localhost:3001/mcp', // another port: another server
    'https://localhost:3000/mcp', // another scheme
    'http://localhost:3000/other', // outside the path even when respelled
    'http://example.com:3000/mcp', // not loopback
  ])('%s is not', (url) => {
    expect(respelled(url)).toBeUndefined();
  });
  it('a resource on a non-loopback host never matches', () => {
    expect(respelledLoopback(new URL('http://localhost/mcp'), resourceBoundary(new URL('https://mcp.example.com/mcp')))).toBeUndefined();
  });
});
