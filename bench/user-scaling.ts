/**
 * How the warm path grows with the users an engine holds: one `CrossAppAccess` engine with 1 to
 * 100,000 users, each holding a cached token, its fetch resolving the user per request (users picked
 * at random), in-process: `next` answers at once with the same `Response`, so no socket is measured.
 * Next to it in the same run, the floor: a wrapper that resolves the user the same way, builds one
 * key, looks it up among as many entries in one `Map`, and sets the header. Reported: the own cost
 * of each per call (minus a bare `next` call), and their ratio. Also with 3 IdPs and 5 registrations,
 * which must make no difference.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CrossAppAccess, type CrossAppAccessEngineOptions } from 'cross-app-access';
import { median, round } from './stats.js';

export interface UserScalingRow {
  users: number;
  /** Own cost per call over a bare `next` call, in µs: one engine, one IdP and one registration. */
  oursUs: number;
  /** The same with 3 IdPs and 5 registrations. */
  oursManyUs: number;
  /** The floor's own cost per call, in µs: one key built, one lookup among `users` entries, the header set. */
  floorUs: number;
  /** oursUs / floorUs. */
  ratio: number;
}

const ORIGIN = 'https://mcp.bench.example';
const RESOURCE = `${ORIGIN}/mcp`;
const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';

/** Token and metadata endpoints answered in-process (no sockets): the tokens are only filled in. */
function inProcessOauth(): typeof fetch {
  let n = 0;
  const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
  return (async (input: string | URL | Request) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (url.pathname.startsWith('/.well-known/oauth-protected-resource')) return json({ resource: RESOURCE, authorization_servers: ['https://as0.bench.example'] });
    if (url.pathname.startsWith('/.well-known/')) {
      const issuer = url.origin + url.pathname.replace(/^\/\.well-known\/(oauth-authorization-server|openid-configuration)/, '').replace(/\/\.well-known\/openid-configuration$/, '');
      return json({ issuer, token_endpoint: `${issuer}/token`, grant_types_supported: ['urn:ietf:params:oauth:grant-type:jwt-bearer'], token_endpoint_auth_methods_supported: ['client_secret_basic', 'none'] });
    }
    if (url.hostname.startsWith('idp')) return json({ access_token: `jag-${++n}`, issued_token_type: ID_JAG_TYPE, token_type: 'N_A' });
    return json({ access_token: `token-${++n}`, token_type: 'Bearer', expires_in: 86_400 });
  }) as typeof fetch;
}

function engineOptions(idps: number, registrations: number, users: number): CrossAppAccessEngineOptions {
  return {
    idp: Array.from({ length: idps }, (_, i) => ({ issuer: `https://idp${i}.bench.example`, tokenEndpoint: undefined, clientId: 'gw' })).map((idp, i) =>
      idps === 1 ? { tokenEndpoint: `https://idp${i}.bench.example/token`, clientId: idp.clientId } : { issuer: idp.issuer, clientId: idp.clientId },
    ),
    // The resource's authorization server is the first; the others are registrations it never uses.
    client: Array.from({ length: registrations }, (_, j) => ({ issuer: `https://as${j}.bench.example`, clientId: `gw-${j}`, clientSecret: 's' })),
    resource: RESOURCE,
    scope: 'tools',
    checkIdJag: false,
    maxCachedTokens: Math.max(1000, users * 2),
    oauthFetch: inProcessOauth(),
  };
}

/** An unsigned ID token naming `iss` and `sub` (the engine reads, never verifies: the IdP would). */
function idTokenOf(iss: string, sub: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ iss, sub, aud: 'gw', exp: Math.floor(Date.now() / 1000) + 86_400 })}.c2ln`;
}

/** An engine whose `users` users all hold a cached token, and its per-request fetch over `next`. */
export async function filledEngine(users: string[], idps: number, registrations: number, next: typeof fetch, current: { user: string }) {
  const xaa = new CrossAppAccess(engineOptions(idps, registrations, users.length));
  const idpIssuers = Array.from({ length: idps }, (_, i) => `https://idp${i}.bench.example`);
  const idpOf = (user: string) => idpIssuers[user.length % idps]!;
  const idToken = ({ user }: { user: string }) => idTokenOf(idpOf(user), user);
  const send = xaa.fetch(next, { user: () => current.user, ...(idps > 1 ? { idp: () => idpOf(current.user) } : {}), idToken });
  for (let i = 0; i < users.length; i += 500) {
    await Promise.all(users.slice(i, i + 500).map((user) => xaa.getAccessToken({ user, idToken, url: RESOURCE, ...(idps > 1 ? { idp: idpOf(user) } : {}) })));
  }
  return send;
}

/** Median µs per call of `call` over `rounds` rounds of `calls` calls each, users at random. */
function timer(calls: number) {
  return async (call: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < calls; i++) await call();
    return ((performance.now() - started) * 1000) / calls;
  };
}

export async function measureUserScaling(settings: { sizes: number[]; rounds: number; calls: number }): Promise<UserScalingRow[]> {
  const rows: UserScalingRow[] = [];
  const answer = new Response('ok');
  const next = (() => Promise.resolve(answer)) as unknown as typeof fetch;
  const init: RequestInit = { method: 'POST', body: '{}' };
  for (const size of settings.sizes) {
    const users = Array.from({ length: size }, (_, i) => `user-${i}@example.com`);
    const current = { user: users[0]! };
    const ours = await filledEngine(users, 1, 1, next, current);
    const oursMany = await filledEngine(users, 3, 5, next, current);
    // The floor: the same user resolution, one key, one lookup among as many entries, the header set.
    const tokens = new Map(users.map((user) => [`${RESOURCE}\u0000${user}`, `token-${user}`]));
    const floor = (url: string, requestInit: RequestInit) => {
      const token = tokens.get(`${RESOURCE}\u0000${current.user}`);
      return next(url, { ...requestInit, headers: { authorization: `Bearer ${token}` } });
    };
    const picks = Array.from({ length: settings.calls }, () => users[Math.floor(Math.random() * users.length)]!);
    let p = 0;
    const pick = () => (current.user = picks[p++ % picks.length]!);
    const time = timer(settings.calls);
    const samples = { ours: [] as number[], many: [] as number[], floor: [] as number[], bare: [] as number[] };
    // Interleaved rounds: each side sees the same machine state.
    for (let r = 0; r < settings.rounds; r++) {
      samples.bare.push(await time(() => (pick(), next(RESOURCE, init))));
      samples.floor.push(await time(() => (pick(), floor(RESOURCE, init))));
      samples.ours.push(await time(() => (pick(), ours(RESOURCE, init))));
      samples.many.push(await time(() => (pick(), oursMany(RESOURCE, init))));
    }
    const bare = median(samples.bare);
    const own = (xs: number[]) => Math.max(0, median(xs) - bare);
    rows.push({ users: size, oursUs: round(own(samples.ours), 3), oursManyUs: round(own(samples.many), 3), floorUs: round(own(samples.floor), 3), ratio: round(own(samples.ours) / own(samples.floor), 2) });
  }
  return rows;
}

/**
 * The same, in a fresh Node process: the heap the other sections of `npm run bench` leave behind
 * (and its collections) must not weigh on a measurement that is about memory access.
 */
export function measureUserScalingAlone(settings: { sizes: number[]; rounds: number; calls: number }): Promise<UserScalingRow[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--json'], {
      env: { ...process.env, SIZES: settings.sizes.join(','), ROUNDS: String(settings.rounds), CALLS: String(settings.calls) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as UserScalingRow[]) : reject(new Error(`user-scaling exited with ${code}`))));
  });
}

// Run alone: node --import tsx bench/user-scaling.ts [--json] (after npm run build).
if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = (process.env.SIZES ?? '1,1000,10000,100000').split(',').map(Number);
  const rows = await measureUserScaling({ sizes, rounds: Number(process.env.ROUNDS ?? 15), calls: Number(process.env.CALLS ?? 20_000) });
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(rows));
  else console.table(rows);
}
