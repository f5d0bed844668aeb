/**
 * The packed package's own tests of the flow, written once for every runtime (Node, Bun, Deno,
 * workerd, a browser page): nothing here imports a Node module or a test framework. Each runtime's
 * entry imports the package and calls {@link runFlowTests}; scripts/runtimes/ starts the loopback
 * servers (IdP, authorization server, MCP SDK server) and reads the results.
 *
 * The runtime's own global `fetch` is passed exactly as a Worker or a page passes it: workerd and
 * browsers refuse a fetch called with another `this` ("Illegal invocation"), Node does not.
 */

/**
 * @typedef {object} FlowConfig
 * @property {string} idpIssuer The IdP's issuer (its metadata names the token endpoint).
 * @property {string} idpClientId The client's id at the IdP.
 * @property {string} idTokenUrl The dev IdP's `GET …/dev/id-token?sub=` (loopback only): stands in for a session.
 * @property {string} mcpUrl The MCP endpoint, also its resource identifier (RFC 9728 §3.3).
 * @property {string} asClientId The client's id at the MCP server's authorization server.
 * @property {string} asClientSecret Its secret (client_secret_basic).
 * @property {string} runId Makes this run's user names unique.
 */

/**
 * @typedef {object} FlowResult
 * @property {string} name
 * @property {boolean} ok
 * @property {string} [error] Why it failed: the error's name, `code` and message.
 */

/** An assertion that fails the test with a message saying what was expected. */
function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** A JSON-RPC `tools/call whoami` (MCP Streamable HTTP, JSON answer): the server says whose token it got. */
async function whoami(authedFetch, mcpUrl, events = []) {
  const response = await authedFetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
  });
  const text = await response.text();
  expect(response.status === 200, `tools/call whoami answered HTTP ${response.status}: ${text.slice(0, 200)}${eventsSaid(events)}`);
  const sub = /sub=([^ "\\]*)/.exec(text)?.[1];
  expect(sub !== undefined, `whoami's answer names no subject: ${text.slice(0, 200)}`);
  return sub;
}

/** What the package reported on the way (its error events say why a token was not obtained). */
function eventsSaid(events) {
  if (events.length === 0) return '';
  const said = events.map((e) => (e.message ? `${e.type} (${e.code ? `${e.code}: ` : ''}${e.message})` : e.type));
  return `; events: ${said.join(', ')}`;
}

/** An ID token for `user` from the dev IdP, fetched with the runtime's fetch like a session store would. */
function idTokenFor(config, user) {
  return async () => {
    const response = await fetch(`${config.idTokenUrl}?sub=${encodeURIComponent(user)}`);
    expect(response.ok, `the dev IdP refused an ID token for ${user}: HTTP ${response.status}`);
    return (await response.json()).id_token;
  };
}

const idp = (config) => ({ issuer: config.idpIssuer, clientId: config.idpClientId });
const client = (config) => ({ clientId: config.asClientId, clientSecret: config.asClientSecret });

/** The tests, in order. Each gets the package's exports and the servers' addresses. */
export const flowTests = [
  {
    name: 'withCrossAppAccess(fetch): one user, resource discovered from the 401, token sent as Bearer',
    async run(lib, config) {
      const user = `alice-${config.runId}`;
      const discovering = [];
      // The global fetch, passed as is (never wrapped, never bound): token requests go through it too.
      const authed = lib.withCrossAppAccess(fetch, {
        idToken: idTokenFor(config, user), idp: idp(config), client: client(config), onEvent: (event) => discovering.push(event),
      });
      expect((await whoami(authed, config.mcpUrl, discovering)) === user, 'the MCP server saw another subject');
      // The second call is served from the cache: one token exchange in all.
      const events = [];
      const cached = lib.withCrossAppAccess(fetch, {
        idToken: idTokenFor(config, user), idp: idp(config), client: client(config), resource: config.mcpUrl,
        onEvent: (event) => events.push(event),
      });
      expect((await whoami(cached, config.mcpUrl, events)) === user, 'the MCP server saw another subject (known resource)');
      expect((await whoami(cached, config.mcpUrl, events)) === user, 'the MCP server saw another subject (second call)');
      const exchanges = events.filter((e) => e.type === 'token_exchange').length;
      expect(exchanges === 1, `expected one token exchange for two calls, saw ${exchanges}${eventsSaid(events)}`);
    },
  },
  {
    name: 'CrossAppAccess engine: xaa.fetch for two users at once, getAccessToken from the same cache',
    async run(lib, config) {
      const events = [];
      // The global fetch as is, also as oauthFetch. (The engine ignores its oauthFetch today and sends
      // token requests through the global fetch; once it honours it, this covers that path too.)
      const xaa = new lib.CrossAppAccess({
        idp: idp(config), client: client(config), resource: config.mcpUrl, oauthFetch: fetch, onEvent: (event) => events.push(event),
      });
      const users = [`alice-${config.runId}`, `bob-${config.runId}`];
      const fetches = users.map((user) => xaa.fetch(fetch, { user, idToken: idTokenFor(config, user) }));
      const seen = await Promise.all(fetches.map((authed) => whoami(authed, config.mcpUrl, events)));
      expect(seen[0] === users[0] && seen[1] === users[1], `each user must reach the server as themselves; saw ${seen.join(', ')}`);

      const tokens = await Promise.all(users.map((user) => xaa.getAccessToken({ user, idToken: idTokenFor(config, user), url: config.mcpUrl })));
      expect(tokens.every((t) => t.resource === config.mcpUrl), 'getAccessToken names another resource');
      expect(tokens[0].token !== tokens[1].token, 'two users were given the same access token');
      const exchanges = events.filter((e) => e.type === 'token_exchange').length;
      expect(exchanges === 2, `getAccessToken must come from the cache: expected 2 token exchanges, saw ${exchanges}${eventsSaid(events)}`);
      // The token works as issued, sent by hand (RFC 6750 §2.1).
      const bearer = (input, init) => fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${tokens[1].token}` } });
      expect((await whoami(bearer, config.mcpUrl)) === users[1], "getAccessToken's token belongs to another user");
    },
  },
  {
    name: 'fails closed: a request with no user rejects with unknown_user and sends nothing',
    async run(lib, config) {
      const xaa = new lib.CrossAppAccess({ idp: idp(config), client: client(config), resource: config.mcpUrl });
      const sent = [];
      // Records every request the package would make, and makes none: nothing may be sent at all.
      const recording = (input) => {
        sent.push(String(input instanceof Request ? input.url : input));
        return Promise.reject(new Error('nothing may be sent for a request without a user'));
      };
      const authed = xaa.fetch(recording, { user: () => undefined, idToken: idTokenFor(config, 'nobody') });
      const error = await whoami(authed, config.mcpUrl).then(() => undefined, (e) => e);
      expect(error instanceof lib.CrossAppAccessError, `expected a CrossAppAccessError, got ${describe(error)}`);
      expect(error.code === 'unknown_user', `expected code unknown_user, got ${error.code}`);
      expect(sent.length === 0, `a request without a user sent ${sent.length} request(s): ${sent.join(', ')}`);
    },
  },
  {
    name: 'dpop: true: a WebCrypto key per engine, a DPoP-bound token, a fresh proof on every request',
    async run(lib, config) {
      const user = `dora-${config.runId}`;
      const events = [];
      const xaa = new lib.CrossAppAccess({ idp: idp(config), client: client(config), dpop: true, onEvent: (event) => events.push(event) });
      const idToken = idTokenFor(config, user);
      const authed = xaa.fetch(fetch, { user, idToken });
      // The MCP server accepts a DPoP-bound token only as Authorization: DPoP with a valid proof, each with a new jti.
      expect((await whoami(authed, config.mcpUrl, events)) === user, 'the MCP server saw another subject');
      expect((await whoami(authed, config.mcpUrl, events)) === user, 'the second call was refused');
      const { tokenType } = await xaa.getAccessToken({ user, idToken, url: config.mcpUrl });
      expect(tokenType === 'DPoP', `the token is ${tokenType}, not DPoP${eventsSaid(events)}`);
      expect(events.filter((e) => e.type === 'token_issued').length === 1, `expected one token_issued${eventsSaid(events)}`);
    },
  },
];

/** Name, `code` and message of what a test threw. */
function describe(error) {
  if (!(error instanceof Error)) return String(error);
  const code = typeof error.code === 'string' ? ` [${error.code}]` : '';
  const cause = error.cause instanceof Error ? ` (cause: ${error.cause.name}: ${error.cause.message})` : '';
  return `${error.name}${code}: ${error.message}${cause}`;
}

/**
 * Runs every test in order and never throws: each result says whether it passed and why not.
 * @param {Record<string, any>} lib The package's exports (`import * as lib from 'cross-app-access'`).
 * @param {FlowConfig} config
 * @returns {Promise<FlowResult[]>}
 */
export async function runFlowTests(lib, config) {
  const results = [];
  for (const test of flowTests) {
    try {
      await test.run(lib, config);
      results.push({ name: test.name, ok: true });
    } catch (error) {
      results.push({ name: test.name, ok: false, error: describe(error) });
    }
  }
  return results;
}
