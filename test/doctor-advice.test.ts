/**
 * Advice that leads somewhere: an "IdP" that is really the MCP server's authorization server is
 * named as such (not "add a secret"), and a run without an ID token does not point at fixes that
 * were never printed.
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../src/cli/doctor/report.js';
import { runDoctor } from '../src/cli/doctor/run.js';
import { TROUBLESHOOTING_URL } from '../src/cli/doctor/step.js';
import { configFor, stackWith, step } from './helpers/doctor.js';

describe('doctor: advice', () => {
  it("an IdP issuer set to the authorization server's issuer: recognised, with the ID token's iss as the issuer to use", async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { idpIssuer: stack.as.issuer }));
    const idp = step(report, 'idp');
    expect(idp.status).toBe('fail');
    expect(idp.details).toContain(`The IdP looks like the authorization server: the IdP issuer ${stack.as.issuer} is the MCP server's authorization server.`);
    expect(idp.fix).toBe(`--idp-issuer must name your IdP, the one that signs the users' ID tokens and exchanges them for ID-JAGs: the issuer of this ID token, \`${stack.idp.issuer}\`; the authorization server only redeems the ID-JAG. See ${TROUBLESHOOTING_URL}#idp-is-the-authorization-server`);
    expect(JSON.stringify(idp)).not.toMatch(/unsupported_auth_method|secret/);
    expect(stack.as.requests.filter((r) => r.method === 'POST')).toHaveLength(0); // the ID token never went to the authorization server
  });

  it('an IdP issuer naming another authorization server that accepts ID-JAGs and lists no token exchange: recognised by how it answers', async () => {
    const stack = await stackWith();
    const other = await stackWith();
    const report = await runDoctor(await configFor(stack, { idpIssuer: other.as.issuer, idToken: undefined }));
    const idp = step(report, 'idp');
    expect(idp.status).toBe('fail');
    expect(idp.details.at(-1)).toBe(`The IdP looks like the authorization server: the IdP at ${other.as.issuer} answers like an authorization server: it accepts ID-JAGs (authorization_grant_profiles_supported) and does not list token exchange.`);
    expect(idp.fix).toContain("the issuer of your users' ID tokens (their `iss`)");
  });

  it('without an ID token: the verdict says which steps did not run, and points at no fix that was never printed', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { idToken: undefined }));
    expect(report.steps.some((s) => s.fix !== undefined)).toBe(false);
    const lines = renderReport(report, false).split('\n');
    expect(lines.at(-1)).toBe('Not every step ran (no ID token (XAA_ID_TOKEN, or --id-token-stdin)): nothing failed, but the setup is not proven to work.');
    expect(lines.join('\n')).not.toContain('see the fixes above');
  });

  it('a failed step: the verdict points at its fix', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { authMethod: 'client_secret_post' }));
    const text = renderReport(report, false);
    expect(text).toContain('    fix: Set --auth-method to one the server lists');
    expect(text.split('\n').at(-1)).toBe('Some steps failed: see the fixes above.');
  });
});
