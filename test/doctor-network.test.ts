/**
 * The most common first failure: a server that is down, a host that does not resolve, an https URL
 * to a plain-http server. The doctor names the error, the host and the port, and links the
 * troubleshooting section for it, in text and in --json; never "a bug in the doctor".
 */
import { describe, expect, it } from 'vitest';
import { runDoctor } from '../src/cli/doctor/run.js';
import { TROUBLESHOOTING_URL } from '../src/cli/doctor/step.js';
import type { DoctorReport } from '../src/cli/doctor/types.js';
import { cli, closedPort, configFor, stackWith, step } from './helpers/doctor.js';

const UNREACHABLE = `See ${TROUBLESHOOTING_URL}#unreachable`;

/** The doctor run as a user runs it, in text and with --json, against `mcpUrl`. */
async function bothOutputs(mcpUrl: string): Promise<{ text: string; probe: DoctorReport['steps'][number]; codes: (number | null)[] }> {
  const args = ['doctor', mcpUrl, '--idp-issuer', 'http://127.0.0.1:9/idp'];
  const [text, json] = await Promise.all([cli(args), cli([...args, '--json'])]);
  const report = JSON.parse(json.stdout) as DoctorReport;
  for (const out of [text.stdout, json.stdout]) expect(out).not.toContain('bug in the doctor');
  return { text: text.stdout, probe: step(report, 'probe'), codes: [text.code, json.code] };
}

describe('doctor: a server it cannot reach', () => {
  it('connection refused (nobody listens on the port): ECONNREFUSED, host and port, in text and --json', async () => {
    const port = await closedPort();
    const { text, probe, codes } = await bothOutputs(`http://127.0.0.1:${port}/mcp`);
    expect(codes).toEqual([1, 1]);
    expect(probe.status).toBe('fail');
    expect(probe.details).toEqual([`Could not reach the MCP server: connection refused (ECONNREFUSED) at 127.0.0.1 port ${port}.`]);
    expect(probe.fix).toBe(`Nothing listens on 127.0.0.1 port ${port}: check that the server is running and the URL's host and port (http://127.0.0.1:${port}). ${UNREACHABLE}`);
    expect(text).toContain(`connection refused (ECONNREFUSED) at 127.0.0.1 port ${port}.`);
    expect(text).toContain(UNREACHABLE);
  }, 30_000);

  it('a host name that does not resolve (.invalid): DNS named, with the host', async () => {
    const { text, probe } = await bothOutputs('https://xaa-doctor.invalid/mcp');
    expect(probe.details[0]).toMatch(/^Could not reach the MCP server: the host name xaa-doctor\.invalid does not resolve \(DNS: (ENOTFOUND|EAI_AGAIN)\)\.$/);
    expect(probe.fix).toContain(UNREACHABLE);
    expect(text).toContain('the host name xaa-doctor.invalid does not resolve');
  }, 30_000);

  it('an https URL to a plain-http server: the TLS failure named, with host and port, and that the server speaks plain http', async () => {
    const stack = await stackWith();
    const port = new URL(stack.mcp.url).port;
    const { text, probe } = await bothOutputs(stack.mcp.url.replace('http:', 'https:'));
    expect(probe.details).toEqual([`Could not reach the MCP server: the TLS handshake with 127.0.0.1 port ${port} failed (ERR_SSL_WRONG_VERSION_NUMBER).`]);
    expect(probe.fix).toBe(`The server at 127.0.0.1 port ${port} does not speak TLS: it looks like plain http; use the URL the server actually serves. ${UNREACHABLE}`);
    expect(text).toContain('failed (ERR_SSL_WRONG_VERSION_NUMBER)');
  }, 30_000);

  it('a port fetch never connects to (a "bad port" of the Fetch standard): said so, with the port', async () => {
    const report = await runDoctor({ mcpUrl: 'http://127.0.0.1:1/mcp', idpIssuer: 'http://127.0.0.1:1', timeoutMs: 5_000 });
    expect(step(report, 'probe').details).toEqual(['Could not reach the MCP server: fetch never connects to port 1 (a "bad port" of the Fetch standard).']);
    expect(step(report, 'idp').details).toEqual(['Could not reach the IdP metadata: fetch never connects to port 1 (a "bad port" of the Fetch standard).']);
    expect(JSON.stringify(report)).not.toContain('bug in the doctor');
  });

  it('an IdP that is down: named at the IdP step, not "no usable answer"', async () => {
    const stack = await stackWith();
    const port = await closedPort();
    const report = await runDoctor(await configFor(stack, { idpIssuer: `http://127.0.0.1:${port}` }));
    const idp = step(report, 'idp');
    expect(idp.status).toBe('fail');
    expect(idp.details).toEqual([`Could not reach the IdP metadata: connection refused (ECONNREFUSED) at 127.0.0.1 port ${port}.`]);
    expect(idp.fix).toContain(UNREACHABLE);
    expect(JSON.stringify(report)).not.toContain('no usable answer');
  });

  it("an IdP token endpoint that is down: named at the token exchange", async () => {
    const stack = await stackWith();
    const port = await closedPort();
    const report = await runDoctor(await configFor(stack, { idpIssuer: undefined, idpTokenEndpoint: `http://127.0.0.1:${port}/token` }));
    const exchange = step(report, 'token-exchange');
    expect(exchange.details).toEqual([`Could not reach the IdP token endpoint: connection refused (ECONNREFUSED) at 127.0.0.1 port ${port}.`]);
    expect(exchange.fix).toContain(UNREACHABLE);
  });
});
