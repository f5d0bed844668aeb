/**
 * Shared helpers for the error-path integration tests (discovery-, token- and transport-errors).
 *
 * - {@link Recorder}: a fetch to hand to `withCrossAppAccess` that forwards to the global fetch (so
 *   nock still sees it) and collects every secret that crosses it: subject tokens, assertions
 *   (ID-JAGs), client secrets, Authorization credentials, and the `access_token`s token endpoints
 *   return. It also collects `onEvent` events.
 * - {@link expectCaaError}: asserts a rejection is a typed `CrossAppAccessError` with the exact
 *   code/stage/status/error/errorDescription, and that neither its message, its JSON form nor any
 *   event quotes a collected secret.
 */
import { expect } from 'vitest';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import {
  CrossAppAccessError,
  type CrossAppAccessErrorCode,
  type CrossAppAccessEvent,
  type CrossAppAccessStage,
  type FetchLike,
} from '../../src/index.js';
import {
  startHttpServer,
  type Handler,
  type OverrideHook,
  type OverrideResponse,
  type StartedServer,
} from '../servers/http-util.js';

const SECRET_FORM_FIELDS = ['subject_token', 'assertion', 'client_secret', 'client_assertion', 'refresh_token', 'actor_token'];
const SECRET_RESPONSE_FIELDS = ['access_token', 'refresh_token', 'id_token'];

export class Recorder {
  /** Every secret seen so far (plus any added by hand). */
  readonly secrets = new Set<string>();
  readonly events: CrossAppAccessEvent[] = [];
  private readonly pending: Promise<unknown>[] = [];

  /** Pass as `onEvent`. */
  readonly onEvent = (event: CrossAppAccessEvent): void => {
    this.events.push(event);
  };

  /** Pass as the wrapped fetch. Forwards to `globalThis.fetch` at call time (nock patches it). */
  readonly fetch: FetchLike = async (url, init) => {
    const body = init?.body;
    const isForm = typeof body === 'string' && body.includes('grant_type=');
    if (isForm) {
      const form = new URLSearchParams(body);
      for (const name of SECRET_FORM_FIELDS) this.add(form.get(name));
    }
    const authorization = new Headers(init?.headers).get('authorization');
    if (authorization) {
      this.add(authorization);
      this.add(authorization.replace(/^\S+\s+/, ''));
    }
    const response = await globalThis.fetch(url, init);
    if (isForm && response.status >= 200 && response.status < 300) {
      // Read a copy of the token response, to learn the ID-JAG / access token it carries.
      const copy = response.clone();
      this.pending.push(
        copy
          .text()
          .then((text) => {
            const json = JSON.parse(text) as Record<string, unknown>;
            for (const name of SECRET_RESPONSE_FIELDS) this.add(json[name]);
          })
          .catch(() => undefined),
      );
    }
    return response;
  };

  /** Adds a secret by hand (an ID token given as a string, a client secret, …). */
  add(...values: unknown[]): void {
    for (const value of values) {
      // Very short strings would match innocent text; every real secret here is longer.
      if (typeof value === 'string' && value.length >= 8) this.secrets.add(value);
    }
  }

  /** Waits for the copies of token responses to be read. */
  async settled(): Promise<void> {
    await Promise.all(this.pending);
  }

  /** Diagnostic events' messages. */
  diagnostics(): string[] {
    return this.events.flatMap((e) => (e.type === 'diagnostic' ? [e.message] : []));
  }

  /** Asserts that none of the collected secrets appears in `text`. */
  async expectNoSecretIn(text: string, where: string): Promise<void> {
    await this.settled();
    for (const secret of this.secrets) {
      expect(text.includes(secret), `${where} contains a secret (${secret.slice(0, 12)}…)`).toBe(false);
    }
  }
}

export interface ExpectedError {
  code: CrossAppAccessErrorCode;
  stage: CrossAppAccessStage;
  status?: number;
  error?: string;
  errorDescription?: string | RegExp;
}

/**
 * Awaits `work`, which must reject with a {@link CrossAppAccessError} matching `expected`; checks that
 * neither its message, its JSON form, nor any event quotes a secret the recorder collected.
 */
export async function expectCaaError(
  work: Promise<unknown>,
  expected: ExpectedError,
  recorder: Recorder,
): Promise<CrossAppAccessError> {
  let outcome: { rejected: false; value: unknown } | { rejected: true; error: unknown };
  try {
    outcome = { rejected: false, value: await work };
  } catch (error) {
    outcome = { rejected: true, error };
  }
  if (!outcome.rejected) {
    const value = outcome.value;
    const shown = value instanceof Response ? `a Response with status ${value.status}` : String(value);
    expect.fail(`expected a rejection with ${expected.code}/${expected.stage}, but the call resolved with ${shown}`);
  }
  const err = outcome.error;
  expect(err, `expected a CrossAppAccessError, got ${String(err)}`).toBeInstanceOf(CrossAppAccessError);
  const e = err as CrossAppAccessError;
  expect({ code: e.code, stage: e.stage }, e.message).toEqual({ code: expected.code, stage: expected.stage });
  if (expected.status !== undefined) expect(e.status, `status of: ${e.message}`).toBe(expected.status);
  if (expected.error !== undefined) expect(e.error).toBe(expected.error);
  if (typeof expected.errorDescription === 'string') expect(e.errorDescription).toBe(expected.errorDescription);
  else if (expected.errorDescription) expect(e.errorDescription).toMatch(expected.errorDescription);
  expect(typeof e.message).toBe('string');
  expect(e.message.length).toBeGreaterThan(0);

  // No token, ID token, ID-JAG, assertion or secret in errors or events.
  await recorder.settled();
  expect(recorder.secrets.size, 'the recorder collected no secret to check against').toBeGreaterThan(0);
  await recorder.expectNoSecretIn(e.message, 'error.message');
  await recorder.expectNoSecretIn(JSON.stringify(e), 'JSON.stringify(error)');
  await recorder.expectNoSecretIn(JSON.stringify(recorder.events), 'onEvent events');
  return e;
}

/** A JSON-RPC `initialize` POST, as an MCP client sends it (the MCP server answers 200 JSON). */
export function initializeRequest(extraHeaders: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extraHeaders },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'error-tests', version: '1.0.0' } },
    }),
  };
}

/** A canned JSON reply for the servers' `override` hooks. */
export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}) {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** An `override` hook that replies for POSTs to the token endpoint only; metadata and the rest stay real. */
export function onTokenPost(reply: (form: Record<string, string>) => OverrideResponse | undefined): OverrideHook {
  return (req) => (req.method === 'POST' && req.path.endsWith('/token') ? reply(req.form) : undefined);
}

/** A loopback server that counts the requests it gets, for "nothing went there" assertions. */
export interface CountingServer extends StartedServer {
  readonly hits: { method: string; path: string; headers: Record<string, string | string[] | undefined> }[];
}

export async function startCountingServer(handler?: Handler): Promise<CountingServer> {
  const hits: CountingServer['hits'] = [];
  const server = await startHttpServer(async (req, res) => {
    hits.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    if (handler) return handler(req, res);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: 'stolen', token_type: 'Bearer' }));
  });
  return Object.assign(server, { hits });
}

/** An `http://127.0.0.1:PORT` URL on which nothing listens any more (connection refused). */
export async function closedLoopbackUrl(): Promise<string> {
  const server = await startHttpServer(() => undefined);
  await server.close();
  return server.url;
}
