/**
 * A fleet of gateway processes sharing tokens through Redis. Run it twice against the same Redis:
 * the second run finds the first one's token (`token from the store`), and only one acquisition is made.
 * Start `npx cross-app-access dev`, paste its `export XAA_…` lines, then:
 *
 *   export XAA_TOKEN_KEY=$(openssl rand -base64 32) REDIS_URL=redis://127.0.0.1:6379
 *   npx tsx examples/redis-fleet.ts; npx tsx examples/redis-fleet.ts
 */
import { createClient } from 'redis';
import { CrossAppAccess } from 'cross-app-access';
import { redisTokenStore } from 'cross-app-access/redis';

const env = (name: string): string => process.env[name] || (() => { throw new Error(`${name} is required (run: npx cross-app-access dev)`); })();

const client = createClient({ url: env('REDIS_URL') });
client.on('error', (error: Error) => console.warn('redis:', error.message)); // the store reports its own trouble as diagnostics
await client.connect();

const store = redisTokenStore({
  client,
  prefix: 'xaa:',
  // The first key encrypts; keep the previous ones after it until their tokens have expired.
  encryptionKeys: [env('XAA_TOKEN_KEY'), ...(process.env.XAA_TOKEN_KEY_PREVIOUS ? [process.env.XAA_TOKEN_KEY_PREVIOUS] : [])],
  // Key names are HMACs under this secret; set it before rotating XAA_TOKEN_KEY (unset: derived from it).
  namingKey: process.env.XAA_NAMING_KEY,
});

let source = 'no token needed';
const xaa = new CrossAppAccess({
  idp: { issuer: env('XAA_IDP_ISSUER'), clientId: env('XAA_IDP_CLIENT_ID') },
  client: { clientId: env('XAA_CLIENT_ID'), clientSecret: env('XAA_CLIENT_SECRET') },
  resource: env('XAA_MCP_URL'),
  store,
  onEvent: (event) => {
    if (event.type === 'token_issued') source = 'token acquired';
    if (event.type === 'token_shared') source = 'token from the store'; // another process acquired it
    if (event.type === 'diagnostic') console.log('diagnostic:', event.message);
  },
});

const authedFetch = xaa.fetch(fetch, { user: 'alice', idToken: env('XAA_ID_TOKEN') });
const response = await authedFetch(env('XAA_MCP_URL'), {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
});
await response.body?.cancel();
console.log(`tools/list ${response.status}, ${source}`);

await store.close();
client.destroy();
