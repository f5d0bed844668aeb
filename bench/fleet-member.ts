/**
 * One process of the fleet bench (bench/fleet.ts): one `CrossAppAccess` engine with `redisTokenStore`
 * on its own node-redis client, no `resource` configured (each server is learned from its 401), for
 * every user of the ID-token file and every server URL. Prints `ready` once connected; answers each
 * command line with one JSON line; `exit` ends it.
 *
 * - `all <rounds> <concurrency>`: every (user, server) `rounds` times, in the same order in every
 *   process, `concurrency` calls in flight: statuses, acquisitions, store hits, diagnostics, wall time.
 * - `one <user> <server index>`: one call; the requests this process made for it (the call itself,
 *   an unauthenticated probe, metadata and token requests).
 *
 * argv: <redis url> <idp issuer> <idp client id> <as issuer> <client id> <client secret>
 *       <encryption key> <command timeout ms> <id tokens file (JSON: user → ID token)> <server url>...
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createClient } from 'redis';
import { CrossAppAccess, type CrossAppAccessEvent, type CrossAppAccessFetch } from 'cross-app-access';
import { redisTokenStore } from 'cross-app-access/redis';

const [redisUrl, issuer, clientId, asIssuer, asClientId, asClientSecret, key, timeoutMs, tokensFile, ...servers] = process.argv.slice(2) as [string, string, string, string, string, string, string, string, string, ...string[]];
const idTokens = JSON.parse(readFileSync(tokensFile, 'utf8')) as Record<string, string>;
const users = Object.keys(idTokens);

const client = createClient({ url: redisUrl });
client.on('error', () => {});
await client.connect();

const counts = { calls: 0, metadata: 0, token: 0 };
const events: Record<string, number> = {};
const diagnostics = new Set<string>();
const store = redisTokenStore({ client, encryptionKeys: [key], commandTimeoutMs: Number(timeoutMs), max: users.length * servers.length * 2 });
const xaa = new CrossAppAccess({
  idp: { issuer, clientId },
  client: { clientId: asClientId, clientSecret: asClientSecret, issuer: asIssuer },
  store,
  maxCachedTokens: users.length * servers.length * 2,
  oauthFetch: (url, init) => {
    if (String(url).includes('/.well-known/')) counts.metadata++;
    else counts.token++;
    return fetch(url, init);
  },
  onEvent: (event: CrossAppAccessEvent) => {
    events[event.type] = (events[event.type] ?? 0) + 1;
    if (event.type === 'diagnostic') diagnostics.add(event.message.replace(/\d+ ms/g, 'N ms'));
  },
});
const next: typeof fetch = (url, init) => {
  counts.calls++;
  return fetch(url, init);
};
const fetches = new Map<string, CrossAppAccessFetch>();
const fetchFor = (user: string): CrossAppAccessFetch => {
  let found = fetches.get(user);
  if (!found) fetches.set(user, (found = xaa.fetch(next, { user, idToken: idTokens[user]! })));
  return found;
};
const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
const call = async (user: string, server: string): Promise<number> => {
  try {
    const response = await fetchFor(user)(server, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
};

console.log('ready');
for await (const line of createInterface({ input: process.stdin })) {
  const [command, a, b] = line.split(' ');
  if (command === 'exit') break;
  for (const k of Object.keys(events)) delete events[k];
  diagnostics.clear();
  Object.assign(counts, { calls: 0, metadata: 0, token: 0 });
  if (command === 'one') {
    const status = await call(a!, servers[Number(b)]!);
    console.log(JSON.stringify({ status, ...counts, discovery: events.discovery ?? 0 }));
    continue;
  }
  const pairs = users.flatMap((user) => servers.map((server) => [user, server] as const));
  const work = Array.from({ length: Number(a) }, () => pairs).flat();
  const statuses: Record<string, number> = {};
  const started = performance.now();
  let nextIndex = 0;
  await Promise.all(
    Array.from({ length: Number(b) }, async () => {
      while (nextIndex < work.length) {
        const [user, server] = work[nextIndex++]!;
        const status = await call(user, server);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const ms = performance.now() - started;
  console.log(JSON.stringify({ requests: work.length, statuses, ms, issued: events.token_issued ?? 0, shared: events.token_shared ?? 0, ...counts, diagnostics: [...diagnostics] }));
}
await store.close();
client.destroy();
process.exit(0);
