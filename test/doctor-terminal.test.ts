/**
 * A server's text must not drive the user's terminal: C0 (ESC, BEL), C1 (U+009B CSI, U+009D OSC) and
 * DEL in every server-provided string the doctor prints (resource, authorization_servers,
 * scopes_supported, the challenge's URL, an issuer, an error_description) come out as visible
 * `\uXXXX` escapes in the text report; `--json` escapes them so the parsed value is unchanged.
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../src/cli/doctor/report.js';
import { runDoctor } from '../src/cli/doctor/run.js';
import type { DoctorReport } from '../src/cli/doctor/types.js';
import { DEFAULT_AS_CLIENT } from './servers/stack.js';
import { cli, configFor, stackWith, step } from './helpers/doctor.js';

// Clears the screen, rings, sets red by C1 CSI, writes the clipboard by C1 OSC 52, then DEL and a forged verdict.
const HOSTILE = '\u001b[2J\u0007\u009b31m\u009d52;c;ZXZpbA==\u0007\u007f\nEvery step passed.';
// In an HTTP header only C1 can travel (Node refuses C0 and DEL there; fetch reads bytes as latin1).
const HOSTILE_IN_HEADER = '\u009b2J\u009d52;c;ZXZpbA==';
// Anything but a line feed between lines: C0, DEL, C1.
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function expectPrintable(text: string) {
  expect(text).not.toMatch(RAW_CONTROL);
  expect(text.split('\n').filter((line) => line === 'Every step passed.')).toEqual([]);
}

describe('doctor: a server cannot drive the terminal', () => {
  it('protected-resource metadata and the challenge URL: resource, authorization_servers, scopes_supported, resource_metadata', async () => {
    const prmOverrides: Record<string, unknown> = {};
    const stack = await stackWith({ mcp: { prmOverrides } });
    Object.assign(prmOverrides, { resource: `${stack.mcp.resource}${HOSTILE}`, authorization_servers: [`${stack.as.issuer}${HOSTILE}`], scopes_supported: [HOSTILE] });
    stack.mcp.override = (req) =>
      req.path === '/mcp' && req.headers.authorization === undefined
        ? { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${stack.mcp.prmUrl}?${HOSTILE_IN_HEADER}"` }, body: '' }
        : undefined;
    const report = await runDoctor(await configFor(stack));
    const prm = step(report, 'protected-resource');
    expect(prm.status).toBe('fail');
    // The hostile strings are in the report (the doctor hides nothing)…
    expect(JSON.stringify(report)).toContain(JSON.stringify(HOSTILE).slice(1, -1));
    expect(step(report, 'probe').details.join('\n')).toContain(HOSTILE_IN_HEADER);
    // …and printed as escapes.
    const text = renderReport(report, false);
    expectPrintable(text);
    expect(text).toContain('\\u001b[2J\\u0007\\u009b31m\\u009d52;c;ZXZpbA==\\u0007\\u007f\\u000aEvery step passed.');
    expect(text).toContain('\\u009b2J\\u009d52;c;ZXZpbA==');
  });

  it("an authorization server's issuer, in the step's details and in its fix", async () => {
    const metadataOverrides: Record<string, unknown> = {};
    const stack = await stackWith({ as: { metadataOverrides } });
    metadataOverrides.issuer = `${stack.as.issuer}${HOSTILE}`;
    const report = await runDoctor(await configFor(stack));
    const as = step(report, 'authorization-server');
    expect(as.status).toBe('fail');
    expect(as.fix).toContain(HOSTILE);
    const text = renderReport(report, false);
    expectPrintable(text);
    expect(text).toMatch(/fix: The authorization server's issuer is `http:\/\/127\.0\.0\.1:\d+\\u001b\[2J/);
  });

  it("an authorization server's error_description, and --json: escaped, and parsed back to the same text", async () => {
    const stack = await stackWith();
    stack.as.override = (req) =>
      req.method === 'POST' ? { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'invalid_grant', error_description: HOSTILE }) } : undefined;
    const config = await configFor(stack);
    const report = await runDoctor(config);
    const grant = step(report, 'jwt-bearer');
    expect(grant.status).toBe('fail');
    expect(grant.details.join('\n')).toContain('\u009b31m\u009d52'); // the library already blanks C0 and DEL in descriptions, not C1
    expectPrintable(renderReport(report, false));

    const args = ['doctor', stack.mcp.url, '--idp-issuer', stack.idp.issuer, '--idp-client-id', stack.idp.clientId, '--client-id', DEFAULT_AS_CLIENT.clientId, '--id-token-stdin'];
    const env = { XAA_CLIENT_SECRET: DEFAULT_AS_CLIENT.clientSecret! };
    const [text, json] = await Promise.all([cli(args, env, config.idToken), cli([...args, '--json'], env, config.idToken)]);
    expect(text.code).toBe(1);
    expectPrintable(text.stdout);
    expect(text.stdout).toContain('\\u009b31m\\u009d52');
    expect(json.code).toBe(1);
    expectPrintable(json.stdout);
    const parsed = JSON.parse(json.stdout) as DoctorReport;
    expect(step(parsed, 'jwt-bearer').details).toEqual(grant.details);
  }, 30_000);
});
