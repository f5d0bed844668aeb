/**
 * A fleet of gateway processes sharing tokens through Redis. Run two of these at once against the
 * same Redis: the second finds the first one's token, and only one acquisition is made.
 *
 *   XAA_TOKEN_KEY=$(openssl rand -base64 32) REDIS_URL=redis://127.0.0.1:6379 \
 *   IDP_ISSUER=... IDP_CLIENT_ID=... AS_CLIENT_ID=... AS_CLIENT_SECRET=... MCP_URL=... ID_TOKEN=... \
 *   npx tsx examples/redis-fleet.ts
 */
import { createClient } from 'redis';
import { CrossAppAccess } from 'cross-app-access';
import { redisTokenStore } from 'cross-app-access/redis';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const client = createClient({ url: env('REDIS_URL') });
client.on('error', (error: Error) => console.warn('redis:', error.message)); // the store reports its own trouble as diagnostics
await client.connect();

const store = redisTokenStore({
  client,
  prefix: 'xaa:',
  // The first key encrypts; keep the previous ones after it until their tokens have expired.
  encryptionKeys: [env('XAA_TOKEN_KEY'), ...(process.env.XAA_TOKEN_KEY_PREVIOUS ? [process.env.XAA_TOKEN_KEY_PREVIOUS] : [])],
});

const xaa = new CrossAppAccess({
  idp: { issuer: env('IDP_ISSUER'), clientId: env('IDP_CLIENT_ID') },
  client: { clientId: env('AS_CLIENT_ID'), clientSecret: env('AS_CLIENT_SECRET') },
  resource: env('MCP_URL'),
  store,
  onEvent: (event) => {
    if (event.type === 'token_issued' || event.type === 'diagnostic') console.log(event.type, 'message' in event ? event.message : event.fingerprint);
  },
});

const authedFetch = xaa.fetch(fetch, { user: 'alice', idToken: env('ID_TOKEN') });
const response = await authedFetch(env('MCP_URL'), {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
});
console.log('tools/list', response.status);

await store.close();
client.destroy();
