/**
 * Mistakes in a call's arguments (not the engine's options): each is a typed error naming what is
 * wrong, thrown (or rejected) before anything is sent to the IdP, the authorization server or the
 * MCP server. Against the real loopback stack, whose request logs show that nothing reached it.
 */
import { describe, expect, it } from 'vitest';
import { ConfigurationError, CrossAppAccess, CrossAppAccessError } from '../src/index.js';
import { stackEngineOptions } from './helpers/stack-options.js';
import { useStack } from './helpers/use-stack.js';

const fixture = useStack();

/** What `run` threw or rejected with (undefined if it returned). */
async function failureOf(run: () => unknown): Promise<unknown> {
  try {
    await run();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('a bad argument at a call: a typed error, and nothing sent', () => {
  const cases: Array<[string, (xaa: CrossAppAccess, url: string) => unknown, { code: string; option?: string }]> = [
    ['getAccessToken(null)', (xaa) => xaa.getAccessToken(null as never), { code: 'invalid_option', option: 'getAccessToken' }],
    ['getAccessToken without a user', (xaa, url) => xaa.getAccessToken({ idToken: 'x', url } as never), { code: 'unknown_user' }],
    ['getAccessToken without an idToken', (xaa, url) => xaa.getAccessToken({ user: 'alice', url } as never), { code: 'invalid_option', option: 'idToken' }],
    ['getAccessToken with a URL that is not one', (xaa) => xaa.getAccessToken({ user: 'alice', idToken: 'x', url: 'not a url' }), { code: 'invalid_option', option: 'url' }],
    ['invalidate(null)', (xaa) => xaa.invalidate(null as never), { code: 'invalid_option', option: 'invalidate' }],
    ['invalidate without the refused token', (xaa, url) => xaa.invalidate({ user: 'alice', url } as never), { code: 'invalid_option', option: 'token' }],
    ['authProvider(null)', (xaa) => xaa.authProvider(null as never), { code: 'invalid_option', option: 'authProvider' }],
    ['authProvider without a user', (xaa, url) => xaa.authProvider({ idToken: 'x', url } as never), { code: 'invalid_option', option: 'user' }],
    ['authProvider without an idToken', (xaa, url) => xaa.authProvider({ user: 'alice', url } as never), { code: 'invalid_option', option: 'idToken' }],
    ['authProvider without a url', (xaa) => xaa.authProvider({ user: 'alice', idToken: 'x' } as never), { code: 'invalid_option', option: 'url' }],
    ['fetch(fetch, null)', (xaa) => xaa.fetch(fetch, null as never), { code: 'invalid_option', option: 'user' }],
    ['forget(42)', (xaa) => xaa.forget(42 as never), { code: 'unknown_user' }],
  ];

  it.each(cases)('%s', async (_call, run, expected) => {
    const { stack } = fixture;
    const xaa = new CrossAppAccess(stackEngineOptions(stack, { resource: stack.mcp.resource }));
    const error = await failureOf(() => run(xaa, stack.mcp.url));
    expect(error).toBeInstanceOf(CrossAppAccessError);
    expect(error).toMatchObject(expected);
    if (expected.option !== undefined) expect(error).toBeInstanceOf(ConfigurationError);
    expect([...stack.idp.requests, ...stack.as.requests, ...stack.mcp.requests]).toEqual([]);
  });
});
