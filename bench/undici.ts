/**
 * Warm path of the undici interceptor, one short run: requests/s through `undici.request` on an Agent
 * composed with `crossAppAccessInterceptor` (token cached), on a bare Agent sending the same
 * `Authorization: Bearer` header, and through the fetch wrapper (`xaa.fetch(fetch)`), against the
 * same keep-alive loopback resource server, 16 requests in flight, in alternating slices. The server
 * runs in this process (it checks each token with the test AS), so absolute numbers are low and only
 * the ratios mean anything. Run: `npm run build && node --import tsx bench/undici.ts`.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { CrossAppAccess } from 'cross-app-access';
import { crossAppAccessInterceptor } from 'cross-app-access/undici';
import { startResourceServer } from '../test/helpers/resource-server.js';
import { DEFAULT_AS_CLIENT, startStack } from '../test/servers/stack.js';
import { median, round } from './stats.js';

const CONCURRENCY = 16;
const SLICE_MS = 400;
const ROUNDS = 6;

const stack = await startStack();
const rs = await startResourceServer(stack.as);
stack.as.allowedResources = [rs.resource];
const xaa = new CrossAppAccess({
  idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
  client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret, issuer: stack.as.issuer },
  resource: rs.resource,
});
const session = { user: 'bench', idToken: () => stack.idp.mintIdToken({ sub: 'bench' }) };
const intercepted = new Agent().compose(crossAppAccessInterceptor(xaa, session));
const bare = new Agent();
const wrapped = xaa.fetch(fetch, session);
const { token } = await xaa.getAccessToken({ ...session, url: rs.resource });

async function viaUndici(dispatcher: Dispatcher, headers: Record<string, string>): Promise<void> {
  const response = await request(rs.resource, { method: 'POST', body: 'ping', headers, dispatcher });
  await response.body.text();
  if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
}
const contenders: Record<string, () => Promise<void>> = {
  interceptor: () => viaUndici(intercepted, {}),
  'bare Agent': () => viaUndici(bare, { authorization: `Bearer ${token}` }),
  'fetch wrapper': async () => {
    const response = await wrapped(rs.resource, { method: 'POST', body: 'ping' });
    await response.text();
    if (response.status !== 200) throw new Error(`status ${response.status}`);
  },
};

async function slice(call: () => Promise<void>): Promise<number> {
  const end = performance.now() + SLICE_MS;
  let done = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      await call();
      done++;
    }
  }));
  return done / (SLICE_MS / 1000);
}

try {
  for (const call of Object.values(contenders)) await slice(call); // warm-up
  const rps: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  const names = Object.keys(contenders);
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) rps[name]!.push(await slice(contenders[name]!));
  }
  const med = Object.fromEntries(names.map((n) => [n, median(rps[n]!)]));
  for (const n of names) console.log(`${n.padEnd(14)} ${round(med[n]!, 0)} req/s (median of ${ROUNDS} slices)`);
  console.log(`interceptor / bare Agent:    ${round(med.interceptor! / med['bare Agent']!, 3)}`);
  console.log(`interceptor / fetch wrapper: ${round(med.interceptor! / med['fetch wrapper']!, 3)}`);
  console.log(`acquisitions: ${stack.idp.counters.exchange} exchange, ${stack.as.counters.grant} grant`);
} finally {
  await Promise.all([intercepted.close(), bare.close(), rs.close(), stack.close()]);
}
