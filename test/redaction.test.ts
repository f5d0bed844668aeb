/**
 * A token endpoint that echoes the request in its error must not get any form of a secret we sent
 * into the error (message, JSON form, errorDescription, errorUri) or into any event: raw, form-encoded
 * (`+` for a space, as the body carried it), percent-encoded with `%20`, and the Basic header's
 * base64 (RFC 6749 §2.3.1, App. B). Real loopback IdP and AS, whose `override` hook echoes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CrossAppAccessError, withCrossAppAccess, type CrossAppAccessEvent } from '../src/index.js';
import { Recorder, initializeRequest, jsonReply, onTokenPost } from './helpers/errors.js';
import { startStack, type Stack } from './servers/stack.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';

/** A secret with a space and every character that form-encoding changes. */
const SECRET = 'Xk9 p+Q/7=zz&';
const CLIENT_ID = 'mcp-client';
const FORM_ENCODED = 'Xk9+p%2BQ%2F7%3Dzz%26';
const PERCENT_ENCODED = 'Xk9%20p%2BQ%2F7%3Dzz%26';
const BASIC = btoa(`${CLIENT_ID}:${PERCENT_ENCODED}`);
/** The same bytes with lower-case hex digits, as some servers re-encode (RFC 3986 §2.1). */
const lowerHex = (s: string) => s.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

async function setup(): Promise<{ stack: Stack; recorder: Recorder; events: CrossAppAccessEvent[]; call: () => Promise<Response> }> {
  const stack = await startStack({
    idp: { clientAuth: 'client_secret_post', clientSecret: SECRET },
    as: { clients: [{ clientId: CLIENT_ID, clientSecret: SECRET, method: 'client_secret_basic' }] },
  });
  cleanups.push(() => stack.close());
  const recorder = new Recorder();
  recorder.add(SECRET, FORM_ENCODED, PERCENT_ENCODED, BASIC, lowerHex(FORM_ENCODED), lowerHex(PERCENT_ENCODED));
  const authedFetch = withCrossAppAccess(recorder.fetch, {
    idToken: () => stack.idp.mintIdToken(),
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId, clientSecret: SECRET },
    client: { clientId: CLIENT_ID, clientSecret: SECRET, authMethod: 'client_secret_basic' },
    retry: false,
    onEvent: recorder.onEvent,
  });
  return { stack, recorder, events: recorder.events, call: () => authedFetch(stack.mcp.url, initializeRequest()) };
}

/** The request body as the client sent it (URLSearchParams serialisation). */
function bodyOf(form: Record<string, string>): string {
  return new URLSearchParams(form).toString();
}

async function rejection(work: Promise<unknown>): Promise<CrossAppAccessError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CrossAppAccessError);
  return error as CrossAppAccessError;
}

async function expectRedacted(error: CrossAppAccessError, recorder: Recorder, events: CrossAppAccessEvent[]): Promise<void> {
  // The echo did arrive: each field had something cut out of it.
  expect(error.errorDescription).toContain('[redacted]');
  expect(error.errorUri).toContain('[redacted]');
  expect(events.some((e) => e.type === 'failure')).toBe(true);
  const texts: [string, string][] = [
    ['message', error.message],
    ['JSON.stringify(error)', JSON.stringify(error)],
    ['errorDescription', error.errorDescription ?? ''],
    ['errorUri', error.errorUri ?? ''],
    ['events', JSON.stringify(events)],
  ];
  for (const [where, text] of texts) {
    await recorder.expectNoSecretIn(text, where);
    // Checked by hand too, since the recorder ignores strings under 8 characters.
    for (const form of [SECRET, FORM_ENCODED, PERCENT_ENCODED, BASIC]) expect(text, where).not.toContain(form);
  }
}

describe('MCP Enterprise-Managed Authorization §7.4.2: an echoing token endpoint gets no form of a secret into errors or events', () => {
  it('leg 1: the IdP echoes the body (client_secret_post, form-encoded) and the secret %20-encoded', async () => {
    const { stack, recorder, events, call } = await setup();
    stack.idp.override = onTokenPost((form) =>
      jsonReply(400, {
        error: 'invalid_request',
        error_description: `secret ${FORM_ENCODED} / ${lowerHex(PERCENT_ENCODED)} / ${form.client_secret}; body: ${bodyOf(form)}`,
        error_uri: `https://idp.example/debug?secret=${encodeURIComponent(form.client_secret ?? '')}&s=${FORM_ENCODED}`,
      }),
    );
    const error = await rejection(call());
    expect({ code: error.code, stage: error.stage, error: error.error }).toEqual({ code: 'oauth_error', stage: 'token_exchange', error: 'invalid_request' });
    await expectRedacted(error, recorder, events);
  });

  it('leg 2: the AS echoes the Basic header, its base64, the encoded halves and the body (with the ID-JAG)', async () => {
    const { stack, recorder, events, call } = await setup();
    stack.as.override = (req) => {
      if (req.method !== 'POST' || !req.path.endsWith('/token')) return undefined;
      const authorization = String(req.headers.authorization);
      const b64 = authorization.replace(/^Basic /, '');
      const halves = atob(b64);
      return jsonReply(400, {
        error: 'invalid_client',
        error_description: `${authorization} | ${b64} | ${halves} | ${bodyOf(req.form)}`,
        error_uri: `https://as.example/debug?auth=${b64}&secret=${halves.split(':')[1]}`,
      });
    };
    const error = await rejection(call());
    expect({ code: error.code, stage: error.stage, error: error.error }).toEqual({ code: 'oauth_error', stage: 'jwt_bearer', error: 'invalid_client' });
    await expectRedacted(error, recorder, events);
  });
});

describe('secrets a server echoes back', () => {
  it('an AS error_description that quotes our assertion and secret is redacted in the error, its JSON and events', async () => {
    const stack = await startStack();
    cleanups.push(() => stack.close());
    const events: unknown[] = [];
    const sent: string[] = [];
    stack.as.override = (req) => {
      if (req.method !== 'POST') return undefined;
      sent.push(req.form.assertion ?? '');
      return {
        status: 400,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: 'invalid_request', error_description: `bad assertion ${req.form.assertion} with secret mcp-secret`, error_uri: `https://as.example/e?a=${req.form.assertion}` }),
      };
    };
    const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource, onEvent: (e) => events.push(e) }));
    const error = await authedFetch(stack.mcp.url, listToolsInit()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrossAppAccessError);
    const serialised = JSON.stringify([error, (error as Error).message, events]);
    expect(sent[0]?.length).toBeGreaterThan(20);
    expect(serialised).not.toContain(sent[0]);
    expect(serialised).not.toContain('mcp-secret');
    expect((error as CrossAppAccessError).errorDescription).toBe('bad assertion [redacted] with secret [redacted]');
  });
});
