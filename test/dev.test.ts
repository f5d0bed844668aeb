/**
 * `cross-app-access dev` as a user runs it: a child process whose printed options work with
 * `withCrossAppAccess`, whose request log is redacted, and which stops on SIGINT/SIGTERM and frees
 * its ports. Also: `doctor` passes against it, and the dev ID-token endpoint's limits.
 */
import { createServer } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { runDoctor } from '../src/cli/doctor/run.js';
import { parseExports } from '../src/cli/dev/env.js';
import { formatRequest } from '../src/cli/dev/log.js';
import { startDevServers } from '../src/cli/dev/start.js';
import { CrossAppAccess, withCrossAppAccess } from '../src/index.js';
import type { DevGatewayConfig } from '../src/cli/dev/gateway.js';
import { runNode, startNode, type NodeProcess } from './helpers/node-process.js';
import { startIdp } from './servers/idp.js';

const READY = 'Ctrl-C stops:\n';
const running: NodeProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

function startDev(...args: string[]): NodeProcess {
  const p = startNode(['src/cli/main.ts', 'dev', ...args]);
  running.push(p);
  return p;
}

/** Whether `port` on 127.0.0.1 can be listened on (nothing holds it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('cross-app-access dev (child process)', { timeout: 40_000 }, () => {
  it('prints options that work with withCrossAppAccess, logs redacted, and stops on SIGINT freeing its ports', async () => {
    const dev = startDev('--port', '0');
    await dev.waitFor(READY);
    const env = parseExports(dev.stdout());
    expect(Object.keys(env).sort()).toEqual(
      ['XAA_AS_ISSUER', 'XAA_CLIENT_ID', 'XAA_CLIENT_SECRET', 'XAA_IDP_CLIENT_ID', 'XAA_IDP_ISSUER', 'XAA_ID_TOKEN', 'XAA_ID_TOKEN_URL', 'XAA_MCP_URL'],
    );
    // The pasteable snippet names the same values.
    expect(dev.stdout()).toContain(`client: { clientId: '${env.XAA_CLIENT_ID}', clientSecret: '${env.XAA_CLIENT_SECRET}' }`);

    const authedFetch = withCrossAppAccess(fetch, {
      idToken: env.XAA_ID_TOKEN!,
      idp: { issuer: env.XAA_IDP_ISSUER!, clientId: env.XAA_IDP_CLIENT_ID! },
      client: { clientId: env.XAA_CLIENT_ID!, clientSecret: env.XAA_CLIENT_SECRET! },
      resource: env.XAA_MCP_URL!,
    });
    const client = new Client({ name: 'dev-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(env.XAA_MCP_URL!), { fetch: authedFetch }));
    const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
    expect(result.content[0]?.text).toContain('sub=alice');
    await client.close();

    await dev.waitFor('rpc=tools/call');
    const log = dev.stdout().slice(dev.stdout().indexOf(READY) + READY.length);
    expect(log).toMatch(/^\S+ idp POST \/token 200 \d+ms .*subject_token=sha256:[0-9a-f]{8}/m);
    expect(log).toMatch(/^\S+ as  POST \/token 200 \d+ms {2}basic=dev-mcp-client .*assertion=sha256:[0-9a-f]{8}/m);
    expect(log).toMatch(/^\S+ mcp POST \/mcp 200 \d+ms {2}bearer=sha256:[0-9a-f]{8} rpc=tools\/call/m);
    expect(log).not.toContain(env.XAA_CLIENT_SECRET);
    expect(log).not.toContain(env.XAA_ID_TOKEN);
    expect(log).not.toMatch(/eyJ[\w-]+\./); // no JWT at all

    const ports = [env.XAA_IDP_ISSUER, env.XAA_AS_ISSUER, env.XAA_MCP_URL].map((u) => Number(new URL(u!).port));
    expect(await Promise.all(ports.map(portFree))).toEqual([false, false, false]);
    dev.child.kill('SIGINT');
    expect(await dev.exited).toBe(0);
    expect(dev.stdout()).toContain('SIGINT: stopping\nstopped\n');
    expect(await Promise.all(ports.map(portFree))).toEqual([true, true, true]);
  });

  it('stops on SIGTERM too', async () => {
    const dev = startDev('--quiet');
    await dev.waitFor(READY);
    dev.child.kill('SIGTERM');
    expect(await dev.exited).toBe(0);
    expect(dev.stdout()).toContain('SIGTERM: stopping');
  });

  it('--port: a port in use is named, exit 1', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const { code, stderr } = await runNode(['src/cli/main.ts', 'dev', '--port', String(port)]);
      expect(code).toBe(1);
      expect(stderr).toContain(`Port ${port}, ${port + 1} or ${port + 2} is in use`);
    } finally {
      blocker.close();
    }
  });

  it('--idps 2 --servers 3: one engine\'s options with lists, which reach every server as each enterprise\'s user', async () => {
    const dev = startDev('--idps', '2', '--servers', '3', '--quiet');
    await dev.waitFor(READY);
    const out = dev.stdout();
    const gateway = JSON.parse(parseExports(out).XAA_GATEWAY!) as DevGatewayConfig;
    expect(gateway.idps).toHaveLength(2);
    expect(gateway.servers).toHaveLength(3);
    // The pasteable options name the same values.
    for (const server of gateway.servers) expect(out).toContain(`{ issuer: '${server.asIssuer}', clientId: '${server.clientId}', clientSecret: '${server.clientSecret}' }`);
    for (const idp of gateway.idps) expect(out).toContain(`{ issuer: '${idp.issuer}', clientId: '${idp.clientId}' }`);
    const xaa = new CrossAppAccess({
      idp: gateway.idps.map(({ issuer, clientId }) => ({ issuer, clientId })),
      client: gateway.servers.map(({ asIssuer, clientId, clientSecret }) => ({ issuer: asIssuer, clientId, clientSecret })),
      resource: gateway.servers.map((server) => server.mcpUrl),
    });
    for (const [e, idp] of gateway.idps.entries()) {
      const idToken = async () => ((await (await fetch(`${idp.idTokenUrl}?sub=carol`)).json()) as { id_token: string }).id_token;
      for (const server of gateway.servers) {
        const response = await xaa.fetch(fetch, { user: `${e}:carol`, idToken })(server.mcpUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
        });
        expect(response.status).toBe(200);
        expect(await response.text()).toContain(`idp=${idp.issuer}`);
      }
    }
    dev.child.kill('SIGINT');
    expect(await dev.exited).toBe(0);
  });

  it('--help prints the usage (exit 0); a bad option is a usage error (exit 2)', async () => {
    const help = await runNode(['src/cli/main.ts', 'dev', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: cross-app-access dev');
    const bad = await runNode(['src/cli/main.ts', 'dev', '--port', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port must be an integer');
    const tooMany = await runNode(['src/cli/main.ts', 'dev', '--servers', '10']);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain('--servers must be an integer from 1 to 9');
  });
});

describe('dev servers in-process', () => {
  it('doctor passes every step against them with the printed configuration', async () => {
    const dev = await startDevServers();
    try {
      const { config } = dev;
      const report = await runDoctor({
        mcpUrl: config.mcpUrl,
        idpIssuer: config.idpIssuer,
        idpClientId: config.idpClientId,
        clientId: config.clientId,
        clientSecret: config.clientSecret,
        idToken: await dev.idp.mintIdToken({ sub: 'alice' }),
        timeoutMs: 10_000,
      });
      expect(report.steps.filter((s) => s.status !== 'pass').map((s) => s.id)).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await dev.close();
    }
  });

  it('GET /dev/id-token mints for ?sub= on loopback, refuses another Host, and exists only in dev', async () => {
    const dev = await startDevServers();
    const plain = await startIdp();
    try {
      const ok = await fetch(`${dev.config.idTokenUrl}?sub=bob`);
      const { id_token: idToken } = (await ok.json()) as { id_token: string };
      expect(JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()).sub).toBe('bob');
      const { request } = await import('node:http');
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(dev.config.idTokenUrl, { headers: { host: 'rebound.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.once('error', reject);
        req.end();
      });
      expect(status).toBe(403);
      expect((await fetch(`${plain.issuer}/dev/id-token`)).status).toBe(404);
    } finally {
      await Promise.all([dev.close(), plain.close()]);
    }
  });
});

describe('formatRequest', () => {
  it('shows tokens as fingerprints, Basic as its client id, secrets never', () => {
    const basic = `Basic ${Buffer.from('dev-mcp-client:s3cret-value').toString('base64')}`;
    const line = formatRequest('as', {
      method: 'POST',
      path: '/token',
      status: 200,
      durationMs: 3,
      authorization: basic,
      notes: { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'eyJ.secret.jwt', client_secret: 's3cret-value', password: 'p' },
    }, new Date('2030-01-01T00:00:00Z'));
    expect(line).toBe('00:00:00.000 as  POST /token 200 3ms  basic=dev-mcp-client grant_type=jwt-bearer assertion=sha256:' +
      `${line.match(/assertion=sha256:([0-9a-f]{8})/)![1]} client_secret=(redacted) password=(redacted)`);
    expect(line).not.toContain('s3cret');
    expect(formatRequest('mcp', { method: 'POST', path: '/mcp', status: 401, durationMs: 1, authorization: 'Bearer abc', notes: {} })).toContain(
      'bearer=sha256:ba7816bf', // sha256("abc")
    );
  });
});
