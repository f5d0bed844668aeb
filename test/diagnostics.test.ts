/**
 * Events on `node:diagnostics_channel`: the same events as `onEvent`, in the same order, on
 * `cross-app-access` and on one `cross-app-access:<type>` channel per type; published without an
 * `onEvent`; never breaking a request; and never carrying a token, an ID-JAG or a secret.
 */
import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe, type ChannelListener } from 'node:diagnostics_channel';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { withCrossAppAccess, type CrossAppAccessEvent, type FetchLike } from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack, type StackOptions } from './servers/stack.js';

const CHANNEL = 'cross-app-access';
/** Length of a stretch of a secret that counts as a leak. */
const PART = 24;
const EVENT_TYPES = [
  'discovery',
  'token_exchange',
  'jwt_bearer',
  'token_issued',
  'token_renewed',
  'token_invalidated',
  'token_shared',
  'signed_out',
  'retry',
  'step_up',
  'failure',
  'diagnostic',
] as const satisfies readonly CrossAppAccessEvent['type'][];
// Every event type is listed: a new one fails type-checking here until it is.
type Unlisted = Exclude<CrossAppAccessEvent['type'], (typeof EVENT_TYPES)[number]>;
const everyTypeListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyTypeListed;

let stack: Stack | undefined;
async function start(options?: StackOptions): Promise<Stack> {
  stack = await startStack(options);
  return stack;
}
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** Subscribes to the main channel and to every per-type channel; `stop()` unsubscribes them all. */
function tapChannels() {
  const all: CrossAppAccessEvent[] = [];
  const byType = new Map<string, { event: CrossAppAccessEvent; channel: string }[]>();
  const subscriptions: [string, ChannelListener][] = [];
  const onAll: ChannelListener = (message) => all.push(message as CrossAppAccessEvent);
  subscribe(CHANNEL, onAll);
  subscriptions.push([CHANNEL, onAll]);
  for (const type of EVENT_TYPES) {
    const name = `${CHANNEL}:${type}`;
    const received: { event: CrossAppAccessEvent; channel: string }[] = [];
    byType.set(type, received);
    const onType: ChannelListener = (message, channel) => received.push({ event: message as CrossAppAccessEvent, channel: String(channel) });
    subscribe(name, onType);
    subscriptions.push([name, onType]);
  }
  return {
    all,
    byType,
    stop() {
      for (const [name, listener] of subscriptions.splice(0)) unsubscribe(name, listener);
    },
  };
}

async function connect(stack: Stack, fetchFn: FetchLike): Promise<Client> {
  const client = new Client({ name: 'diagnostics-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcp.url), { fetch: fetchFn }));
  return client;
}

function text(result: unknown): string {
  return (result as { content: { text: string }[] }).content.map((c) => c.text).join('');
}

/**
 * Node reports a subscriber's exception as an 'uncaughtException' on the next tick (documented for
 * diagnostics_channel). While `work` runs, those are collected here instead of failing the run.
 */
async function collectingUncaught(work: () => Promise<void>): Promise<unknown[]> {
  const previous = process.listeners('uncaughtException');
  const caught: unknown[] = [];
  const collect = (error: unknown) => caught.push(error);
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', collect);
  try {
    await work();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('uncaughtException', collect);
    for (const listener of previous) process.on('uncaughtException', listener);
  }
  return caught;
}

describe('diagnostics_channel', () => {
  it('a subscriber gets the events onEvent gets, in the same order, through a real MCP SDK client (also after revokeAll); each per-type channel gets only its type', async () => {
    const stack = await start();
    const fromListener: CrossAppAccessEvent[] = [];
    const tap = tapChannels();
    try {
      const client = await connect(stack, withCrossAppAccess(fetch, stackOptions(stack, { onEvent: (event) => fromListener.push(event) })));
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami']);
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'one' } }))).toBe('one');
      stack.as.revokeAll();
      expect(text(await client.callTool({ name: 'echo', arguments: { text: 'two' } }))).toBe('two');
      await client.close();
    } finally {
      tap.stop();
    }

    const types = fromListener.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['discovery', 'token_exchange', 'jwt_bearer', 'token_issued', 'token_invalidated']));
    expect(types.filter((t) => t === 'token_issued')).toHaveLength(2);
    expect(types.indexOf('token_invalidated')).toBeGreaterThan(types.indexOf('token_issued'));
    expect(tap.all).toEqual(fromListener);

    for (const type of EVENT_TYPES) {
      const received = tap.byType.get(type) ?? [];
      for (const { event, channel } of received) {
        expect(event.type).toBe(type);
        expect(channel).toBe(`${CHANNEL}:${type}`);
      }
      expect(received.map((r) => r.event)).toEqual(fromListener.filter((e) => e.type === type));
    }
    for (const type of ['discovery', 'token_exchange', 'jwt_bearer', 'token_issued', 'token_invalidated']) {
      expect(tap.byType.get(type)?.length, type).toBeGreaterThan(0);
    }

    // Unsubscribed: nothing more arrives.
    const seen = tap.all.length;
    const again = withCrossAppAccess(fetch, stackOptions(stack, { resource: stack.mcp.resource }));
    expect((await again(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(tap.all).toHaveLength(seen);
  });

  it('a wrapper without onEvent still publishes to the channels', async () => {
    const stack = await start();
    const tap = tapChannels();
    try {
      const authedFetch = withCrossAppAccess(fetch, stackOptions(stack));
      const response = await authedFetch(stack.mcp.url, listToolsInit());
      expect(response.status).toBe(200);
      await response.text();
    } finally {
      tap.stop();
    }
    const types = tap.all.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['discovery', 'token_exchange', 'jwt_bearer', 'token_issued']));
    expect(tap.byType.get('token_issued')?.map((r) => r.event)).toEqual(tap.all.filter((e) => e.type === 'token_issued'));
    expect(tap.byType.get('token_issued')).toHaveLength(1);
  });

  it('a throwing subscriber or a throwing onEvent does not break the request', async () => {
    const stack = await start();
    const subscriberError = new Error('subscriber boom');
    const listenerError = new Error('onEvent boom');
    const throwing: ChannelListener = () => {
      throw subscriberError;
    };
    const delivered: CrossAppAccessEvent[] = [];
    const behaved: ChannelListener = (message) => delivered.push(message as CrossAppAccessEvent);
    let listenerCalls = 0;
    const onEvent = () => {
      listenerCalls++;
      throw listenerError;
    };

    const uncaught = await collectingUncaught(async () => {
      subscribe(CHANNEL, throwing);
      subscribe(`${CHANNEL}:token_issued`, throwing);
      subscribe(CHANNEL, behaved);
      try {
        const authedFetch = withCrossAppAccess(fetch, stackOptions(stack, { onEvent }));
        const client = await connect(stack, authedFetch);
        expect(text(await client.callTool({ name: 'echo', arguments: { text: 'still fine' } }))).toBe('still fine');
        stack.as.revokeAll();
        expect(text(await client.callTool({ name: 'whoami', arguments: {} }))).toMatch(/^sub=alice/);
        await client.close();

        // A failing acquisition fails with its own error, not the listener's or the subscriber's.
        stack.as.revokeAll();
        stack.idp.override = (req) =>
          req.path.endsWith('/token') ? { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_client' }) } : undefined;
        await expect(authedFetch(stack.mcp.url, listToolsInit())).rejects.toMatchObject({ code: 'oauth_error', stage: 'token_exchange' });
      } finally {
        unsubscribe(CHANNEL, throwing);
        unsubscribe(`${CHANNEL}:token_issued`, throwing);
        unsubscribe(CHANNEL, behaved);
      }
    });

    const types = delivered.map((e) => e.type);
    expect(types.filter((t) => t === 'token_issued')).toHaveLength(2);
    expect(types).toContain('token_invalidated');
    expect(types).toContain('failure');
    expect(listenerCalls).toBe(delivered.length);
    // Node routes a subscriber's exception to 'uncaughtException'; onEvent's is swallowed by the wrapper.
    expect(uncaught).toContain(subscriberError);
    expect(uncaught.every((error) => error === subscriberError)).toBe(true);
    expect(uncaught).not.toContain(listenerError);
  });

  it('no event on the channel carries an ID token, an ID-JAG, an access token or a client secret; every event has a numeric durationMs', async () => {
    const idpSecret = `idp-secret-${randomUUID()}`;
    const asSecret = `as-secret-${randomUUID()}`;
    const stack = await start({
      idp: { clientAuth: 'client_secret_post', clientSecret: idpSecret },
      as: { clients: [{ ...DEFAULT_AS_CLIENT, clientSecret: asSecret }] },
    });
    const { idp, as, mcp } = stack;

    // Every credential that is minted, sent or received in the flow.
    const idTokens: string[] = [];
    const idJags: string[] = [];
    const accessTokens: string[] = [];
    const capturing: FetchLike = async (url, init) => {
      const response = await fetch(url, init);
      const target = String(url);
      if (target === idp.tokenEndpoint || target === as.tokenEndpoint) {
        const body = (await response.clone().json().catch(() => ({}))) as { access_token?: unknown };
        if (typeof body.access_token === 'string') (target === idp.tokenEndpoint ? idJags : accessTokens).push(body.access_token);
      }
      return response;
    };

    let clock = Date.now();
    const authedFetch = withCrossAppAccess(
      capturing,
      stackOptions(stack, {
        idToken: async () => {
          const token = await idp.mintIdToken();
          idTokens.push(token);
          return token;
        },
        idp: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idpSecret },
        client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: asSecret },
        retry: { retries: 2, baseDelay: 1, maxDelay: 1000 },
        now: () => clock,
      }),
    );
    const call = async () => {
      const response = await authedFetch(mcp.url, listToolsInit());
      await response.text();
      return response.status;
    };

    const tap = tapChannels();
    try {
      // retry (IdP 503 once) and diagnostic (token_type "weird"), with a pre-minted ID-JAG.
      const now = Math.floor(Date.now() / 1000);
      const preMinted = await idp.mintIdJag({
        iss: idp.issuer,
        sub: 'alice',
        aud: as.issuer,
        client_id: DEFAULT_AS_CLIENT.clientId,
        resource: mcp.resource,
        jti: randomUUID(),
        iat: now,
        exp: now + 300,
      });
      idJags.push(preMinted);
      let exchanges = 0;
      idp.override = (req) => {
        if (!req.path.endsWith('/token')) return undefined;
        exchanges++;
        if (exchanges === 1) return { status: 503, body: '' };
        if (exchanges === 2) {
          return {
            status: 200,
            headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
            body: JSON.stringify({ issued_token_type: 'urn:ietf:params:oauth:token-type:id-jag', access_token: preMinted, token_type: 'weird', expires_in: 300 }),
          };
        }
        return undefined;
      };
      expect(await call()).toBe(200);
      idp.override = undefined;

      // step_up: the server now wants a scope the token lacks.
      mcp.requiredScopes = ['files:read'];
      expect(await call()).toBe(200);

      // token_invalidated: every token revoked at the AS.
      as.revokeAll();
      expect(await call()).toBe(200);

      // token_renewed: the clock moves into the renewal window (lifetime 3600 s, window 360 s).
      clock += 3_250_000;
      expect(await call()).toBe(200);
      await expect.poll(() => tap.all.some((e) => e.type === 'token_renewed')).toBe(true);

      // failure at the IdP, whose error description echoes the client secret and the ID token.
      as.revokeAll();
      idp.override = (req) =>
        req.path.endsWith('/token')
          ? {
              status: 400,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ error: 'invalid_request', error_description: `Bad client_secret ${req.form.client_secret} for subject_token ${req.form.subject_token}` }),
            }
          : undefined;
      await expect(call()).rejects.toMatchObject({ stage: 'token_exchange' });
      idp.override = undefined;

      // failure at the AS, whose error description echoes the Basic credentials and the ID-JAG.
      as.override = (req) =>
        req.path.endsWith('/token')
          ? {
              status: 400,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ error: 'invalid_request', error_description: `Bad credentials ${String(req.headers.authorization)} for assertion ${req.form.assertion}` }),
            }
          : undefined;
      await expect(call()).rejects.toMatchObject({ stage: 'jwt_bearer' });
      as.override = undefined;
    } finally {
      tap.stop();
    }

    const events = tap.all;
    // Every type but a fleet's and a gateway's (a shared store's hits, sign-outs: test/redis-signout.test.ts).
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(EVENT_TYPES.filter((t) => t !== 'token_shared' && t !== 'signed_out')));
    const failures = events.filter((e): e is Extract<CrossAppAccessEvent, { type: 'failure' }> => e.type === 'failure');
    expect(failures.map((f) => f.stage)).toEqual(['token_exchange', 'jwt_bearer']);
    // The echoes did reach the events (so the check below is not vacuous).
    expect(failures[0]?.message).toContain('Bad client_secret');
    expect(failures[1]?.message).toContain('Bad credentials [redacted] for assertion [redacted]');
    expect(events.some((e) => e.type === 'diagnostic' && e.message.includes('weird'))).toBe(true);

    // Everything that must not leak was seen in the flow.
    expect(idTokens.length).toBeGreaterThanOrEqual(5);
    expect(idJags.length).toBeGreaterThanOrEqual(5);
    expect(accessTokens.length).toBeGreaterThanOrEqual(4);
    const secrets = [
      ...idTokens,
      ...idJags,
      ...accessTokens,
      idpSecret,
      asSecret,
      Buffer.from(`${DEFAULT_AS_CLIENT.clientId}:${asSecret}`).toString('base64'),
    ];
    const serialized = JSON.stringify(events);
    // Neither whole nor in part (messages are truncated, so a leak may be a prefix): no 24-character
    // stretch of any secret appears.
    for (const secret of secrets) {
      expect(serialized.includes(secret), `leaked ${secret.slice(0, 24)}…`).toBe(false);
      for (let at = 0; at + PART <= secret.length; at += 4) {
        const part = secret.slice(at, at + PART);
        expect(serialized.includes(part), `leaked part ${part} of ${secret.slice(0, 24)}…`).toBe(false);
      }
    }

    for (const event of events) {
      expect(typeof event.durationMs, event.type).toBe('number');
      expect(Number.isFinite(event.durationMs), event.type).toBe(true);
    }
  });
});
