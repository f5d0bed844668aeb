/**
 * Access tokens that cannot be sent in an HTTP header (RFC 9110 §5.5) are refused when they are
 * received, with a typed error that does not quote them, and never cached; tokens outside RFC 6750's
 * b64token grammar that are valid header values (Cloudflare's `userId:grantId:secret`) are used.
 * The real loopback AS issues the tokens (its `accessTokenFormat` shapes them); a minimal resource
 * server accepts any token the AS issued, whatever its characters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess, type CrossAppAccessEvent } from '../src/index.js';
import { startResourceServer, type ResourceServer } from './helpers/resource-server.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack } from './servers/stack.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

async function setup(format: (random: string) => string): Promise<{ stack: Stack; rs: ResourceServer; issued: string[] }> {
  const stack = await startStack({ bindResource: false });
  cleanups.push(() => stack.close());
  const rs = await startResourceServer(stack.as);
  cleanups.push(() => rs.close());
  const issued: string[] = [];
  stack.as.accessTokenFormat = (random) => {
    const token = format(random);
    issued.push(token);
    return token;
  };
  return { stack, rs, issued };
}

function wrapper(stack: Stack, rs: ResourceServer, events: CrossAppAccessEvent[]) {
  return withCrossAppAccess(fetch, {
    idToken: () => stack.idp.mintIdToken(),
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer },
    resource: rs.resource,
    retry: false,
    onEvent: (event) => events.push(event),
  });
}

describe('RFC 9110 §5.5: access tokens must be sendable as a header value', () => {
  it.each([
    ['a line feed', (r: string) => `${r}\nX-Injected: 1`],
    ['a carriage return', (r: string) => `${r}\rtail`],
    ['a NUL', (r: string) => `${r}\u0000tail`],
    ['a control character (U+0001)', (r: string) => `${r}\u0001tail`],
    ['a TAB', (r: string) => `${r}\ttail`],
    ['DEL', (r: string) => `${r}\u007ftail`],
    ['a Latin-1 character (é)', (r: string) => `${r}\u00e9tail`],
    ['a character past U+00FF (☃)', (r: string) => `${r}\u2603tail`],
    ['a leading space', (r: string) => ` ${r}`],
    ['a trailing space', (r: string) => `${r} `],
  ])('a token with %s → invalid_response/jwt_bearer, not quoted, not cached, never sent', async (_name, format) => {
    const { stack, rs, issued } = await setup(format);
    const events: CrossAppAccessEvent[] = [];
    const authedFetch = wrapper(stack, rs, events);

    for (let attempt = 1; attempt <= 2; attempt++) {
      const error = await authedFetch(rs.resource, { method: 'POST', body: '{}' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CrossAppAccessError);
      const e = error as CrossAppAccessError;
      expect({ code: e.code, stage: e.stage, status: e.status }).toEqual({ code: 'invalid_response', stage: 'jwt_bearer', status: 200 });
      expect(e.message).toMatch(/cannot be sent in an HTTP Authorization header/);
      const token = issued.at(-1)!;
      const random = token.trim().replace(/[^A-Za-z0-9_-].*$/s, '');
      expect(random.length).toBeGreaterThan(20);
      for (const text of [e.message, JSON.stringify(e), JSON.stringify(events)]) expect(text).not.toContain(random);
      // Nothing was cached: every call acquires again.
      expect(stack.as.counters.grant).toBe(attempt);
    }
    // Only the protected-resource metadata GET (for scopes_supported) reached it: no token at all.
    expect(rs.received.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it.each([
    ['colons (Cloudflare userId:grantId:secret)', (r: string) => `alice:grant-7:${r}`],
    ['an inner space', (r: string) => `${r.slice(0, 10)} ${r.slice(10)}`],
    ['every visible ASCII character', (r: string) => `${r}!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`],
  ])('a token with %s is used as issued', async (_name, format) => {
    const { stack, rs, issued } = await setup(format);
    const authedFetch = wrapper(stack, rs, []);
    const response = await authedFetch(rs.resource, { method: 'POST', body: '{}' });
    expect(response.status).toBe(200);
    expect(rs.received.flatMap((r) => (r.authorization === undefined ? [] : [r.authorization]))).toEqual([`Bearer ${issued[0]}`]);
  });
});
