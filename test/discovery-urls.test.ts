/** Well-known URL construction (RFC 9728 §3.1; RFC 8414 §3.1; OpenID Connect Discovery §4). */
import { describe, expect, it } from 'vitest';
import { protectedResourceUrls, serverMetadataUrls } from '../src/oauth/discovery.js';

const prm = (target: string, challenge?: string) => protectedResourceUrls(new URL(target), challenge);

describe('serverMetadataUrls (RFC 8414 §3.1, OpenID Connect Discovery §4)', () => {
  const pathOrder = [
    'https://login.tools.example/.well-known/oauth-authorization-server/tenant-7',
    'https://login.tools.example/.well-known/openid-configuration/tenant-7',
    'https://login.tools.example/tenant-7/.well-known/openid-configuration',
  ];
  const rootOrder = [
    'https://login.tools.example/.well-known/oauth-authorization-server',
    'https://login.tools.example/.well-known/openid-configuration',
  ];

  it('path issuer https://login.tools.example/tenant-7, exact order', () => {
    expect(serverMetadataUrls(new URL('https://login.tools.example/tenant-7'))).toEqual(pathOrder);
  });

  it('a trailing slash on a path issuer is stripped first', () => {
    expect(serverMetadataUrls(new URL('https://login.tools.example/tenant-7/'))).toEqual(pathOrder);
  });

  it('root issuer without a slash, exact order', () => {
    expect(serverMetadataUrls(new URL('https://login.tools.example'))).toEqual(rootOrder);
  });

  it('root issuer with a slash, exact order', () => {
    expect(serverMetadataUrls(new URL('https://login.tools.example/'))).toEqual(rootOrder);
  });

  it.each(['https://login.tools.example/tenant-7', 'https://login.tools.example/tenant-7/', 'https://login.tools.example/a/b/c'])(
    'path issuer %s never tries a root URL',
    (issuer) => {
      const urls = serverMetadataUrls(new URL(issuer));
      expect(urls).toHaveLength(3);
      for (const u of urls) {
        expect(new URL(u).pathname).not.toBe('/.well-known/oauth-authorization-server');
        expect(new URL(u).pathname).not.toBe('/.well-known/openid-configuration');
      }
    },
  );

  it('a multi-segment path is inserted whole', () => {
    expect(serverMetadataUrls(new URL('https://login.tools.example/a/b'))).toEqual([
      'https://login.tools.example/.well-known/oauth-authorization-server/a/b',
      'https://login.tools.example/.well-known/openid-configuration/a/b',
      'https://login.tools.example/a/b/.well-known/openid-configuration',
    ]);
  });

  it('every URL stays on the issuer origin, port included', () => {
    const urls = serverMetadataUrls(new URL('http://localhost:4444/t'));
    expect(urls).toHaveLength(3);
    for (const u of urls) expect(new URL(u).origin).toBe('http://localhost:4444');
  });

  it('no duplicates', () => {
    for (const issuer of ['https://login.tools.example', 'https://login.tools.example/tenant-7']) {
      const urls = serverMetadataUrls(new URL(issuer));
      expect(new Set(urls).size).toBe(urls.length);
    }
  });
});

describe('protectedResourceUrls (RFC 9728 §3.1)', () => {
  const target = 'https://mcp.tools.example/team-a/mcp';
  const pathAware = 'https://mcp.tools.example/.well-known/oauth-protected-resource/team-a/mcp';
  const root = 'https://mcp.tools.example/.well-known/oauth-protected-resource';

  it('path-aware URL, then root, without a challenge', () => {
    expect(prm(target)).toEqual([pathAware, root]);
  });

  it('an https challenge URL comes first', () => {
    const challenge = 'https://meta.tools.example/prm/team-a';
    expect(prm(target, challenge)).toEqual([challenge, pathAware, root]);
  });

  it('a loopback http challenge URL is used', () => {
    const challenge = 'http://localhost:45773/.well-known/oauth-protected-resource/mcp';
    expect(prm('http://localhost:45773/mcp', challenge)).toEqual([challenge, 'http://localhost:45773/.well-known/oauth-protected-resource']);
  });

  it.each([
    ['non-loopback http', 'http://evil.example/.well-known/oauth-protected-resource'],
    ['relative', '/.well-known/oauth-protected-resource/team-a/mcp'],
    ['garbage', 'not a url at all'],
    ['empty', ''],
    ['credentials', 'https://u:p@mcp.tools.example/.well-known/oauth-protected-resource'],
    ['javascript scheme', 'javascript:alert(1)'],
    ['file scheme', 'file:///etc/passwd'],
  ])('a %s challenge URL is ignored', (_what, challenge) => {
    expect(prm(target, challenge)).toEqual([pathAware, root]);
  });

  it('the query is kept on the path-aware URL', () => {
    expect(prm('https://mcp.tools.example/team-a/mcp?tenant=7')).toEqual([`${pathAware}?tenant=7`, root]);
  });

  it('the fragment is dropped', () => {
    expect(prm('https://mcp.tools.example/team-a/mcp#frag')).toEqual([pathAware, root]);
  });

  it.each(['https://mcp.tools.example/', 'https://mcp.tools.example'])('path / (%s) gives only the root URL', (t) => {
    expect(prm(t)).toEqual([root]);
  });

  it('a challenge equal to a well-known URL is not repeated', () => {
    expect(prm(target, pathAware)).toEqual([pathAware, root]);
    expect(prm(target, root)).toEqual([root, pathAware]);
    expect(prm('https://mcp.tools.example/', root)).toEqual([root]);
  });

  it('no duplicates for any combination', () => {
    for (const t of [target, 'https://mcp.tools.example/', 'https://mcp.tools.example/x?y=1']) {
      for (const c of [undefined, root, pathAware, 'https://other.example/prm', 'http://evil.example/prm']) {
        const urls = prm(t, c);
        expect(new Set(urls).size, `${t} ${c}`).toBe(urls.length);
      }
    }
  });

  it('the well-known URLs stay on the target origin, port included', () => {
    const urls = prm('https://mcp.tools.example:8443/team-a/mcp');
    expect(urls).toEqual([
      'https://mcp.tools.example:8443/.well-known/oauth-protected-resource/team-a/mcp',
      'https://mcp.tools.example:8443/.well-known/oauth-protected-resource',
    ]);
  });
});
