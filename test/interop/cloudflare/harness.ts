/**
 * Runs the interop Worker (worker.ts) under `wrangler dev`, fully offline: no metrics, no error
 * reports, no update check, no request.cf download, config, logs, bundles and KV state in a temp
 * directory. wrangler and the workerd processes it starts run in their own process group, which
 * close() (and, failing that, this process's exit) ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const wranglerBin = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin', 'wrangler.js');

export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** One token-endpoint answer, as the Worker logged it (no credentials). */
export interface TokenLogEntry {
  grantType: string | null;
  authMethod: AuthMethod;
  clientId: string | null;
  status: number;
  error?: string;
  /** The provider's internal reason (its `onError` hook), e.g. `enterprise-managed-authorization/replayed`. */
  reason?: string;
}

export interface WorkerUnderTest {
  /** `http://127.0.0.1:PORT`: the authorization server's issuer. */
  readonly origin: string;
  /** `${origin}/mcp`: the protected MCP endpoint and its resource identifier. */
  readonly resource: string;
  /** Registers a client for exactly one token endpoint auth method (OAuthHelpers.createClient). */
  createClient(authMethod: AuthMethod): Promise<{ clientId: string; clientSecret?: string }>;
  /** Revokes every grant of a user (OAuthHelpers.listUserGrants + revokeGrant); their tokens stop working. */
  revokeGrants(userId: string): Promise<number>;
  /** The token endpoint's answers since the last reset, and the MCP requests that reached the handler. */
  log(): Promise<{ token: TokenLogEntry[]; apiRequests: number; unauthenticated: number }>;
  resetLog(): Promise<void>;
  /** wrangler's output so far (for failure messages). */
  output(): string;
  close(): Promise<void>;
}

/** The committed wrangler.jsonc (full-line comments only), with `main` made absolute so the temp copy bundles the same file. */
function configFor(dir: string): string {
  const jsonc = readFileSync(join(here, 'wrangler.jsonc'), 'utf8');
  const config = JSON.parse(jsonc.split('\n').filter((line) => !line.trim().startsWith('//')).join('\n')) as Record<string, unknown>;
  const file = join(dir, 'wrangler.json');
  writeFileSync(file, JSON.stringify({ ...config, main: join(here, String(config.main)) }, null, 2));
  return file;
}

/** Where each wrangler's process group id is written, for {@link endProcessGroups}. */
export const processGroupsFile = (tmpDir: string) => join(tmpDir, 'process-groups');

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // The group is gone already.
    return false;
  }
}

const killGroup = (child: ChildProcess, signal: NodeJS.Signals) => child.pid !== undefined && signalGroup(child.pid, signal);
const groupAlive = (child: ChildProcess) => child.pid !== undefined && signalGroup(child.pid, 0);

/** Ends every process group listed in `tmpDir` that is still running: SIGTERM, then SIGKILL after 3 s. */
export async function endProcessGroups(tmpDir: string): Promise<number> {
  let listed: number[];
  try {
    listed = readFileSync(processGroupsFile(tmpDir), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return 0;
  }
  const alive = listed.filter((pgid) => signalGroup(pgid, 'SIGTERM'));
  for (let i = 0; i < 30 && alive.some((pgid) => signalGroup(pgid, 0)); i++) await new Promise((r) => setTimeout(r, 100));
  for (const pgid of alive) signalGroup(pgid, 'SIGKILL');
  return alive.length;
}

export async function startWorker(o: {
  idpIssuer: string;
  idpJwksUri: string;
  /** The throwaway CA; `undefined` leaves workerd without it (it then cannot reach the IdP's JWKS). */
  caFile: string | undefined;
  tmpDir: string;
  startTimeoutMs?: number;
}): Promise<WorkerUnderTest> {
  const dir = join(o.tmpDir, `wrangler-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const adminToken = randomBytes(24).toString('base64url');
  const config = configFor(dir);
  const args = [
    wranglerBin, 'dev',
    '--config', config,
    '--ip', '127.0.0.1',
    '--port', '0',
    '--inspector-port', '0',
    '--persist-to', join(dir, 'state'),
    '--show-interactive-dev-session=false',
    '--log-level', 'info',
    '--var', `IDP_ISSUER:${o.idpIssuer}`,
    '--var', `IDP_JWKS_URI:${o.idpJwksUri}`,
    '--var', `ADMIN_TOKEN:${adminToken}`,
  ];
  const child = spawn(process.execPath, args, {
    cwd: dir,
    // Its own process group: wrangler's workerd children are ended with it.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // workerd trusts this CA for the IdP's JWKS (miniflare reads NODE_EXTRA_CA_CERTS into workerd's TLS trust).
      NODE_EXTRA_CA_CERTS: o.caFile ?? '',
      WRANGLER_SEND_METRICS: 'false',
      WRANGLER_SEND_ERROR_REPORTS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      XDG_CONFIG_HOME: join(dir, 'config'),
      WRANGLER_LOG_PATH: join(dir, 'logs'),
      WRANGLER_REGISTRY_PATH: join(dir, 'registry'),
      // Non-interactive: no banner, hence no update check.
      CI: 'true',
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    },
  });
  // Safety nets if close() is never reached: this process's normal exit, and the global teardown,
  // which ends every process group listed here (a test process killed by its runner runs no handler).
  if (child.pid !== undefined) appendFileSync(processGroupsFile(o.tmpDir), `${child.pid}\n`);
  const exitOnParentExit = () => killGroup(child, 'SIGKILL');
  process.once('exit', exitOnParentExit);
  let output = '';
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));

  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wrangler dev did not start in time:\n${output}`)), o.startTimeoutMs ?? 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const ready = /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (ready) {
        clearTimeout(timer);
        resolve(ready[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exitedPromise.then(() => {
      clearTimeout(timer);
      reject(new Error(`wrangler dev exited before it was ready:\n${output}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });

  async function stop(): Promise<void> {
    if (!exited) killGroup(child, 'SIGTERM');
    const timedOut = await Promise.race([exitedPromise.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5_000).unref())]);
    if (timedOut) killGroup(child, 'SIGKILL');
    // wrangler gone: any workerd left in its group is ended too.
    for (let i = 0; i < 50 && groupAlive(child); i++) {
      killGroup(child, i < 20 ? 'SIGTERM' : 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
    }
    process.off('exit', exitOnParentExit);
  }

  const admin = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`admin ${method} ${path}: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`);
    return response.json();
  };

  // Ready also means the Worker answers: its protected-resource metadata (RFC 9728 §3).
  for (let i = 0; ; i++) {
    const ok = await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 100) {
      await stop();
      throw new Error(`the Worker did not answer:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    origin,
    resource: `${origin}/mcp`,
    createClient: (authMethod) => admin('POST', '/admin/clients', { authMethod }) as Promise<{ clientId: string; clientSecret?: string }>,
    revokeGrants: async (userId) => ((await admin('POST', '/admin/revoke', { userId })) as { revoked: number }).revoked,
    log: () => admin('GET', '/admin/log') as Promise<{ token: TokenLogEntry[]; apiRequests: number; unauthenticated: number }>,
    resetLog: async () => void (await admin('POST', '/admin/log/reset')),
    output: () => output,
    close: stop,
  };
}
