/**
 * A fresh loopback stack + recorder + wrapper for the error-path tests (discovery-, token- and
 * transport-errors): {@link useErrorStacks} starts IdP → AS → MCP per test, closes it after each test,
 * and builds the `withCrossAppAccess` wrapper under test around a {@link Recorder}.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, expect } from 'vitest';
import { withCrossAppAccess, type CrossAppAccessError, type CrossAppAccessOptions } from '../../src/index.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack, type StackOptions } from '../servers/stack.js';
import { expectCaaError, initializeRequest, Recorder, startCountingServer, type CountingServer, type ExpectedError } from './errors.js';

/** The IdP's client secret: the IdP is a confidential client, so there is an IdP secret to keep out of errors. */
export const IDP_SECRET = 'idp-secret-Qx7wLm2pT';
/** The AS client secret of {@link DEFAULT_AS_CLIENT}. */
export const AS_SECRET = DEFAULT_AS_CLIENT.clientSecret!;
export const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface ErrorStackCtx {
  stack: Stack;
  recorder: Recorder;
  idToken: string;
}

/** How the wrapper finds the IdP: discovered from its `issuer`, or a configured `tokenEndpoint`. */
export type IdpConfig = 'issuer' | 'tokenEndpoint';

/** IdP options for the stack's IdP client, pointing leg 1 at `where`. */
export function idpAt(ctx: ErrorStackCtx, where: { tokenEndpoint?: string; issuer?: string }): CrossAppAccessOptions['idp'] {
  return { ...where, clientId: ctx.stack.idp.clientId, clientSecret: IDP_SECRET };
}

/**
 * Call once at the top of a test file: registers an `afterEach` that closes everything the file's
 * tests started, and returns the per-test helpers.
 */
export function useErrorStacks(options: { idp: IdpConfig }) {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((close) => close()));
  });

  /** A fresh stack whose IdP is a confidential client (client_secret_post), and a recorder that knows the secrets. */
  async function setup(stackOptions: StackOptions = {}): Promise<ErrorStackCtx> {
    const stack = await startStack({
      ...stackOptions,
      idp: { clientAuth: 'client_secret_post', clientSecret: IDP_SECRET, ...stackOptions.idp },
    });
    cleanups.push(() => stack.close());
    const recorder = new Recorder();
    const idToken = await stack.idp.mintIdToken();
    recorder.add(idToken, IDP_SECRET, AS_SECRET);
    return { stack, recorder, idToken };
  }

  /** The wrapper under test: the IdP as configured by `options.idp`, AS credentials bound on first use. */
  function wrap(ctx: ErrorStackCtx, overrides: Partial<CrossAppAccessOptions> = {}) {
    const where = options.idp === 'issuer' ? { issuer: ctx.stack.idp.issuer } : { tokenEndpoint: ctx.stack.idp.tokenEndpoint };
    return withCrossAppAccess(ctx.recorder.fetch, {
      idToken: ctx.idToken,
      idp: idpAt(ctx, where),
      client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: AS_SECRET },
      onEvent: ctx.recorder.onEvent,
      ...overrides,
    });
  }

  /** One `initialize` POST to the stack's MCP server through {@link wrap}. */
  function call(ctx: ErrorStackCtx, overrides: Partial<CrossAppAccessOptions> = {}): Promise<Response> {
    return wrap(ctx, overrides)(ctx.stack.mcp.url, initializeRequest());
  }

  /** A counting loopback server (see {@link startCountingServer}), closed after the test. */
  async function counting(handler?: Parameters<typeof startCountingServer>[0]): Promise<CountingServer> {
    const server = await startCountingServer(handler);
    cleanups.push(() => server.close());
    return server;
  }

  /**
   * A discovery failure for the stack's MCP server, both ways: without `resource` the server is not
   * known to be ours, so its 401 comes back as it came with a `diagnostic` naming the error code;
   * with `resource` configured the call rejects with the typed error, which is returned.
   */
  async function expectDiscoveryFailure(ctx: ErrorStackCtx, expected: ExpectedError, overrides: Partial<CrossAppAccessOptions> = {}): Promise<CrossAppAccessError> {
    const response = await call(ctx, overrides);
    expect(response.status, 'without resource, the 401 is handed back').toBe(401);
    await response.body?.cancel();
    const diagnostics = ctx.recorder.diagnostics();
    expect(diagnostics.some((m) => m.includes(`(${expected.code}:`)), diagnostics.join('\n')).toBe(true);
    return expectCaaError(call(ctx, { resource: ctx.stack.mcp.resource, ...overrides }), expected, ctx.recorder);
  }

  return { setup, wrap, call, counting, expectDiscoveryFailure };
}

/** The MCP server answered the `initialize` request itself (200, its own server name). */
export async function expectInitializeOk(response: Response): Promise<void> {
  expect(response.status).toBe(200);
  const body = (await response.json()) as { result?: { serverInfo?: { name?: string } } };
  expect(body.result?.serverInfo?.name).toBe('xaa-test-mcp');
}

/** A genuine ID-JAG signed by the stack's IdP, for canned IdP replies the AS will accept. */
export async function mintJag(stack: Stack, extra: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return stack.idp.mintIdJag({
    iss: stack.idp.issuer,
    sub: 'alice',
    aud: stack.as.issuer,
    client_id: DEFAULT_AS_CLIENT.clientId,
    resource: stack.mcp.resource,
    jti: randomUUID(),
    iat: now,
    exp: now + 300,
    ...extra,
  });
}
