/**
 * `cross-app-access doctor` against the real loopback IdP, authorization server and MCP SDK server,
 * once set up right and once per usual misconfiguration: each is diagnosed by name, with its fix.
 */
import { describe, expect, it } from 'vitest';
import { runDoctor } from '../src/cli/doctor/run.js';
import { TROUBLESHOOTING_URL } from '../src/cli/doctor/step.js';
import type { DoctorReport } from '../src/cli/doctor/types.js';
import { cli, configFor, stackWith, step } from './helpers/doctor.js';
import { DEFAULT_AS_CLIENT } from './servers/stack.js';

describe('doctor', () => {
  it('a working setup: every step passes, through one authenticated MCP request, with tokens only as fingerprints', async () => {
    const stack = await stackWith();
    const config = await configFor(stack);
    const report = await runDoctor(config);
    expect(report.steps.map((s) => `${s.id}:${s.status}`)).toEqual([
      'probe:pass',
      'protected-resource:pass',
      'authorization-server:pass',
      'idp:pass',
      'token-exchange:pass',
      'jwt-bearer:pass',
      'mcp:pass',
    ]);
    expect(report.ok).toBe(true);
    const text = JSON.stringify(report);
    expect(text).not.toContain(config.idToken!);
    expect(text).not.toContain(DEFAULT_AS_CLIENT.clientSecret!);
    expect(text).toMatch(/access token issued \(fingerprint [0-9a-f]{8}\)/);
    const issued = stack.as.requests.find((r) => r.method === 'POST');
    expect(issued).toBeDefined();
  });

  it('an authorization-server issuer with a trailing slash: named, with the exact issuer to use', async () => {
    const metadataOverrides: Record<string, unknown> = {};
    const stack = await stackWith({ as: { metadataOverrides } });
    metadataOverrides.issuer = `${stack.as.issuer}/`;
    const report = await runDoctor(await configFor(stack));
    const as = step(report, 'authorization-server');
    expect(as.status).toBe('fail');
    expect(as.fix).toContain(`\`${stack.as.issuer}/\`, with its trailing slash`);
    expect(step(report, 'token-exchange').status).toBe('skip');
    expect(report.ok).toBe(false);
  });

  it('a resource written differently (localhost against 127.0.0.1): named, with the resource to set', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { resource: stack.mcp.resource.replace('127.0.0.1', 'localhost') }));
    const prm = step(report, 'protected-resource');
    expect(prm.status).toBe('fail');
    expect(prm.fix).toBe(`Set resource to exactly \`${stack.mcp.resource}\` (the host differs: 127.0.0.1, not localhost). See ${TROUBLESHOOTING_URL}#resource-mismatch`);
  });

  it('an authorization server that does not list the ID-JAG profile', async () => {
    const stack = await stackWith({ as: { metadataOverrides: { authorization_grant_profiles_supported: ['urn:example:other'] } } });
    const report = await runDoctor(await configFor(stack));
    const as = step(report, 'authorization-server');
    expect(as.status).toBe('fail');
    expect(as.details.join('\n')).toContain('does not list the ID-JAG profile');
    expect(as.fix).toContain('does not accept ID-JAGs');
  });

  it('an auth method the authorization server does not list', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { authMethod: 'client_secret_post' }));
    const as = step(report, 'authorization-server');
    expect(as.status).toBe('fail');
    expect(as.fix).toContain('Set --auth-method to one the server lists (client_secret_basic)');
  });

  it('a server listing several methods that allows this client only another one: invalid_client at the grant, pointing at --auth-method', async () => {
    const stack = await stackWith({ as: { metadataOverrides: { token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'] } } });
    const report = await runDoctor(await configFor(stack, { authMethod: 'client_secret_post' }));
    const grant = step(report, 'jwt-bearer');
    expect(grant.status).toBe('fail');
    expect(grant.details.join('\n')).toContain('invalid_client');
    expect(grant.fix).toContain('set --auth-method to the method the client is registered with');
  });

  it('an IdP client mapping that puts another client_id in the ID-JAG: both ids named', async () => {
    const stack = await stackWith({ idp: { jagClientId: 'someone-else' } });
    const report = await runDoctor(await configFor(stack));
    const exchange = step(report, 'token-exchange');
    expect(exchange.status).toBe('fail');
    expect(exchange.details.join('\n')).toContain('client_id `someone-else`');
    expect(exchange.details.join('\n')).toContain(`this client is \`${DEFAULT_AS_CLIENT.clientId}\``);
    expect(report.steps.find((s) => s.id === 'jwt-bearer')).toBeUndefined(); // the ID-JAG was not sent
  });

  it('an expired ID token: the IdP rejects it, and the fix says to sign in again', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { idToken: await stack.idp.mintIdToken({ expiresInSeconds: -600 }) }));
    const exchange = step(report, 'token-exchange');
    expect(exchange.status).toBe('fail');
    expect(exchange.fix).toContain('The IdP rejected the ID token');
  });

  it('an IdP issuer with a trailing slash', async () => {
    const metadataOverrides: Record<string, unknown> = {};
    const stack = await stackWith({ idp: { metadataOverrides } });
    metadataOverrides.issuer = `${stack.idp.issuer}/`;
    const report = await runDoctor(await configFor(stack));
    expect(step(report, 'idp').fix).toContain(`\`${stack.idp.issuer}/\`, with its trailing slash`);
  });

  it('a pinned client issuer that is not the one guarding the resource', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { clientIssuer: `${stack.as.issuer}/` }));
    expect(step(report, 'authorization-server').fix).toBe(`Pin client.issuer to exactly \`${stack.as.issuer}\`, without a trailing slash. See ${TROUBLESHOOTING_URL}#wrong-authorization-server`);
  });

  it('without an ID token: discovery is checked, the token steps are skipped, and it does not pass', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { idToken: undefined }));
    expect(step(report, 'token-exchange')).toMatchObject({ status: 'skip' });
    expect(report.ok).toBe(false);
  });
});

describe('doctor on the command line', () => {
  it('reads secrets from the environment and the ID token from stdin, prints JSON, exits 0 only when everything passed', async () => {
    const stack = await stackWith();
    const idToken = await stack.idp.mintIdToken();
    const args = ['doctor', stack.mcp.url, '--idp-issuer', stack.idp.issuer, '--idp-client-id', stack.idp.clientId, '--client-id', DEFAULT_AS_CLIENT.clientId, '--json', '--id-token-stdin'];
    const ok = await cli(args, { XAA_CLIENT_SECRET: DEFAULT_AS_CLIENT.clientSecret! }, idToken);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as DoctorReport;
    expect(report.ok).toBe(true);
    expect(ok.stdout + ok.stderr).not.toContain(idToken);
    expect(ok.stdout + ok.stderr).not.toContain(DEFAULT_AS_CLIENT.clientSecret);
    const wrongSecret = await cli(args, { XAA_CLIENT_SECRET: 'not-the-secret' }, idToken);
    expect(wrongSecret.code).toBe(1);
    expect(wrongSecret.stdout).not.toContain('not-the-secret');
  }, 30_000);

  it('refuses a secret given as an argument (argv is visible to every user of the machine)', async () => {
    const run = await cli(['doctor', 'http://127.0.0.1:1/mcp', '--idp-issuer', 'http://127.0.0.1:1', '--client-secret', 'hunter2'], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--client-secret is not accepted');
  }, 30_000);
});
