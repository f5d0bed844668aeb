/**
 * The doctor applies the library's rule for where a token may go (RFC 9728 §3.3: the URL within the
 * metadata's `resource`), against real loopback servers: two tenants on one origin, and a
 * loopback host spelled differently from the server's own spelling.
 */
import { describe, expect, it } from 'vitest';
import { runDoctor } from '../src/cli/doctor/run.js';
import { TROUBLESHOOTING_URL } from '../src/cli/doctor/step.js';
import type { OverrideResponse } from '../src/cli/dev/servers/http-util.js';
import { configFor, stackWith, step } from './helpers/doctor.js';

describe('doctor: the resource covers the URL', () => {
  it('tenant B on the same origin naming tenant A as its resource: no token reaches B, and the step fails with the resource_mismatch advice', async () => {
    // Tenant A is the stack's MCP server at /a/mcp; tenant B at /b/mcp on the same origin answers
    // like a protected resource whose metadata names A, and would accept any token it is sent.
    const stack = await stackWith({ mcp: { path: '/a/mcp' } });
    const tenantB = `${stack.mcp.origin}/b/mcp`;
    const tenantBMetadata = `${stack.mcp.origin}/.well-known/oauth-protected-resource/b/mcp`;
    stack.mcp.override = (req): OverrideResponse | undefined => {
      if (req.path === '/.well-known/oauth-protected-resource/b/mcp') {
        return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource: stack.mcp.resource, authorization_servers: [stack.as.issuer] }) };
      }
      if (req.path !== '/b/mcp') return undefined;
      if (req.headers.authorization === undefined) return { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${tenantBMetadata}"` }, body: '' };
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }) };
    };

    const report = await runDoctor(await configFor(stack, { mcpUrl: tenantB }));

    const tokensAtB = stack.mcp.requests.filter((r) => r.path === '/b/mcp' && r.authorization !== undefined);
    expect(tokensAtB).toHaveLength(0);
    expect(stack.as.requests.filter((r) => r.method === 'POST')).toHaveLength(0); // no token was even issued
    const prm = step(report, 'protected-resource');
    expect(prm.status).toBe('fail');
    expect(prm.details.join('\n')).toContain(`resource_mismatch: The protected-resource metadata at ${tenantBMetadata} names resource "${stack.mcp.resource}", which does not cover ${tenantB}`);
    expect(prm.fix).toBe(`The metadata describes another resource than ${tenantB}, so no token for it may be sent there (RFC 9728 §3.3): check that this URL is the MCP endpoint; otherwise its operator must publish metadata whose resource covers it. See ${TROUBLESHOOTING_URL}#resource-mismatch`);
    expect(report.steps.map((s) => s.id)).not.toContain('jwt-bearer');
    expect(report.ok).toBe(false);
  });

  it('a URL below the resource, on the same origin (the resource is a path prefix): passes, as the library allows it', async () => {
    const stack = await stackWith({ mcp: { path: '/tools/mcp' } });
    const prefix = `${stack.mcp.origin}/tools`;
    stack.as.allowedResources = [prefix];
    const metadataUrl = `${stack.mcp.origin}/.well-known/oauth-protected-resource/tools/mcp`;
    stack.mcp.override = (req) =>
      req.path === '/.well-known/oauth-protected-resource/tools/mcp' ? { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource: prefix, authorization_servers: [stack.as.issuer] }) } : undefined;
    const report = await runDoctor(await configFor(stack, { idToken: undefined }));
    expect(step(report, 'protected-resource')).toMatchObject({ status: 'pass' });
    expect(step(report, 'protected-resource').details).toContain(`found at ${metadataUrl}`);
  });

  it('localhost where the server calls itself 127.0.0.1: the fix is the URL its metadata names, not "ask its operator"', async () => {
    const stack = await stackWith();
    const report = await runDoctor(await configFor(stack, { mcpUrl: stack.mcp.url.replace('127.0.0.1', 'localhost') }));
    const prm = step(report, 'protected-resource');
    expect(prm.status).toBe('fail');
    const port = new URL(stack.mcp.url).port;
    expect(prm.fix).toBe(`Use ${stack.mcp.resource}, the resource its metadata names: localhost:${port} and 127.0.0.1:${port} are the same machine, but a token is bound to the resource as the server spells it (RFC 9728 §3.3). See ${TROUBLESHOOTING_URL}#resource-mismatch`);
    expect(prm.fix).not.toContain('operator');
  });
});
