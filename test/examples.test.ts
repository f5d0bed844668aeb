/**
 * Every program in examples/ runs against `cross-app-access dev`'s servers (started in-process through
 * the same module `dev` uses), with the environment `dev` prints, and must exit 0 with its expected
 * output. The examples import the built package: run `npm run build` first (`npm test` does).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { devEnvironment } from '../src/cli/dev/env.js';
import { startDevServers, type DevServers } from '../src/cli/dev/start.js';
import { startDevGateway, type DevGateway } from '../src/cli/dev/gateway.js';
import { devGatewayEnvironment } from '../src/cli/dev/gateway-banner.js';
import { runNode } from './helpers/node-process.js';
import { skipRedis, startRedisServer, type RedisServer } from './servers/redis-server.js';
import { leaksOf } from './servers/http-util.js';

let dev: DevServers;
let env: Record<string, string>;
beforeAll(async () => {
  dev = await startDevServers();
  env = devEnvironment(dev.config, await dev.idp.mintIdToken({ sub: 'alice' }));
});
afterAll(() => dev.close());
beforeEach(() => {
  dev.idp.reset();
  dev.as.reset();
  dev.mcp.reset();
});

/** Runs examples/<name>.ts; asserts exit 0, that the MCP server authorized it, and no leak to the IdP or AS. */
async function example(name: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const { code, stdout, stderr } = await runNode([`examples/${name}.ts`], { ...env, ...extraEnv });
  expect(code, `${name} failed:\n${stdout}\n${stderr}`).toBe(0);
  expect(dev.mcp.counters.authorized).toBeGreaterThan(0);
  expect([...leaksOf(dev.idp), ...leaksOf(dev.as)]).toEqual([]);
  return stdout;
}

describe('examples/ against the dev servers', { timeout: 60_000 }, () => {
  it('mcp-sdk-v1: a v1 transport on the wrapped fetch calls whoami and echo', async () => {
    const out = await example('mcp-sdk-v1');
    expect(out).toContain('whoami: sub=alice');
    expect(out).toContain('echo: hello from v1');
  });

  it('mcp-sdk-v2: a v2 transport on the wrapped fetch lists and calls tools', async () => {
    const out = await example('mcp-sdk-v2');
    expect(out).toContain('tools: whoami, echo');
    expect(out).toContain('whoami: sub=alice');
  });

  it('apply-middlewares: the logger outside crossAppAccess sees MCP requests, never token requests', async () => {
    const out = await example('apply-middlewares');
    expect(out).toContain('log: POST /mcp 200');
    expect(out).not.toMatch(/log: \S+ \/(token|\.well-known)/);
    expect(out).toContain('whoami: sub=alice');
  });

  it('global-fetch: plain fetch and an SDK client without a fetch option are signed in', async () => {
    const out = await example('global-fetch');
    expect(out).toContain('fetch tools/list: 200 whoami, echo');
    expect(out).toContain('whoami: sub=alice');
  });

  it('ky: an instance created with the wrapped fetch lists tools and calls whoami', async () => {
    const out = await example('ky');
    expect(out).toContain('ky: POST /mcp 200');
    expect(out).toContain('tools: whoami, echo');
    expect(out).toContain('whoami: sub=alice');
  });

  it('gateway: two users at once through one engine, each with their own token', async () => {
    const out = await example('gateway');
    expect(out).toContain('alice: sub=alice');
    expect(out).toContain('bob: sub=bob');
    expect(dev.as.counters.grant).toBe(2);
  });

  it('undici-global: global fetch and undici.request through the global dispatcher', async () => {
    const out = await example('undici-global');
    expect(out).toContain('MCP SDK on global fetch: sub=alice');
    expect(out).toContain('undici.request tools/list: 200 whoami listed');
  });

  it('otel: the Node SDK with console exporters prints the spans of the exchange and the grant, and the metrics', async () => {
    const out = await example('otel');
    expect(out).toContain('tools/list: 200');
    expect(out).toContain("name: 'cross-app-access token_exchange'");
    expect(out).toContain("name: 'cross-app-access jwt_bearer'");
    expect(out).toContain('cross_app_access.acquisitions');
    expect(out).not.toContain(env.XAA_ID_TOKEN!);
    expect(out).not.toContain(env.XAA_CLIENT_SECRET!);
  });

  describe('gateway-many: dev --idps 2 --servers 3', () => {
    let gateway: DevGateway;
    beforeAll(async () => {
      gateway = await startDevGateway({ idps: 2, servers: 3 });
    });
    afterAll(() => gateway?.close());

    it('each enterprise\'s users reach every server with their own token; one grant per (user, server) with that server\'s registration; clients reused', async () => {
      const { code, stdout, stderr } = await runNode(['examples/gateway-many.ts'], devGatewayEnvironment(gateway.config));
      expect(code, `gateway-many failed:\n${stdout}\n${stderr}`).toBe(0);
      for (let e = 0; e < 2; e++) {
        for (const sub of ['alice', 'bob']) {
          for (let s = 1; s <= 3; s++) {
            for (const round of [1, 2]) expect(stdout).toMatch(new RegExp(`round ${round}: enterprise ${e + 1} ${sub} @ server ${s}: sub=${sub} .*idp=${gateway.idps[e]!.issuer}$`, 'm'));
          }
        }
      }
      // Four users (two per enterprise) at each server: four grants there, each with that server's registration.
      gateway.authorizationServers.forEach((as, j) => {
        const grants = as.requests.filter((r) => r.method === 'POST');
        expect(grants).toHaveLength(4);
        for (const grant of grants) expect(Buffer.from(String(grant.headers.authorization).slice(6), 'base64').toString()).toMatch(new RegExp(`^dev-mcp-client-${j + 1}:`));
      });
      for (const idp of gateway.idps) expect(idp.requests.filter((r) => r.method === 'POST')).toHaveLength(6);
      // The second round reused each user's connected client: one tools/call each, no new initialize.
      for (const mcp of gateway.mcpServers) expect(mcp.requests.filter((r) => r.method === 'POST').length).toBe(4 * 2 + 4 * 2);
    });
  });

  describe.skipIf(skipRedis)('redis-fleet', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterAll(() => redis?.stop());

    it('the second process finds the first one’s token in Redis: one grant for both', async () => {
      const fleetEnv = { REDIS_URL: redis.url, XAA_TOKEN_KEY: randomBytes(32).toString('base64') };
      expect(await example('redis-fleet', fleetEnv)).toContain('tools/list 200, token acquired');
      expect(await example('redis-fleet', fleetEnv)).toContain('tools/list 200, token from the store');
      expect(dev.as.counters.grant).toBe(1);
    });
  });
});
