/**
 * The lifetime an authorization server gives a token (RFC 6749 §5.1 `expires_in`): 0 means expired
 * now (the token serves the request that acquired it and is never reused); a negative value is an
 * invalid answer, and nothing is kept.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess } from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { startStack, type Stack } from './servers/stack.js';

let stack: Stack;
beforeEach(async () => {
  stack = await startStack();
});
afterEach(async () => {
  await stack.close();
});

/** The AS answers each grant with a real token (valid at the MCP server) and this `expires_in`. */
function grantsWithExpiresIn(expiresIn: unknown): void {
  stack.as.override = (req) => {
    if (req.method !== 'POST' || req.path !== '/token') return undefined;
    const token = stack.as.issueAccessToken({ sub: 'alice', clientId: 'mcp-client', resource: stack.mcp.resource, scopes: [] });
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: expiresIn }) };
  };
}

describe('expires_in', () => {
  it('0: each request is served with its own token, none reused', async () => {
    grantsWithExpiresIn(0);
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    for (let i = 0; i < 3; i++) expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(stack.as.counters.grant).toBe(3);
    const bearers = new Set(stack.mcp.requests.map((r) => r.authorization).filter((a) => a !== undefined));
    expect(bearers.size).toBe(3);
  });

  it('"0" (a numeric string) is read the same way', async () => {
    grantsWithExpiresIn('0');
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    for (let i = 0; i < 2; i++) expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(stack.as.counters.grant).toBe(2);
  });

  it('negative: an invalid_response at the jwt_bearer stage; the token is never sent', async () => {
    grantsWithExpiresIn(-30);
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    const error = await authedFetch(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject({ code: 'invalid_response', stage: 'jwt_bearer', status: 200 });
    expect(stack.mcp.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });
});

describe('a huge lifetime', () => {
  it('a huge expires_in is clamped, so the token is still cached (not re-acquired on every request)', async () => {
    stack.as.override = undefined;
    const original = stack.as.accessTokenTtlSeconds;
    stack.as.accessTokenTtlSeconds = 1e306;
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    for (let i = 0; i < 3; i++) await authedFetch(stack.mcp.url, listToolsInit(i));
    stack.as.accessTokenTtlSeconds = original;
    expect(stack.as.counters.grant).toBe(1);
    expect(stack.idp.counters.exchange).toBe(1);
  });
});
