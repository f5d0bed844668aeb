/**
 * The scope requested at both legs (MCP authorization, "Scope Selection Strategy"): the challenge's
 * `scope` wins over the metadata's `scopes_supported`, openid and offline_access are never asked for,
 * and `scopes_supported` is still read when the authorization server's issuer is pinned. Real
 * loopback servers, one stack per test.
 */
import { describe, expect, it } from 'vitest';
import { withCrossAppAccess } from '../src/index.js';
import { listToolsInit, stackOptions } from './helpers/stack-options.js';
import { startStack } from './servers/stack.js';

describe('scopes learned from the server (MCP authorization spec, "Scope Selection Strategy")', () => {
  it('openid and offline_access from scopes_supported are never requested', async () => {
    const learning = await startStack({ mcp: { scopesSupported: ['openid', 'offline_access', 'files:read'] } });
    try {
      const authedFetch = withCrossAppAccess(fetch, stackOptions(learning));
      expect((await authedFetch(learning.mcp.url, listToolsInit())).status).toBe(200);
      const exchange = learning.idp.requests.find((r) => r.method === 'POST');
      const grant = learning.as.requests.find((r) => r.method === 'POST');
      expect(exchange?.form.scope).toBe('files:read');
      expect(grant?.form.scope).toBe('files:read');
    } finally {
      await learning.close();
    }
  });

  it('the challenge scope wins over scopes_supported', async () => {
    const challenged = await startStack({ mcp: { scopesSupported: ['files:read', 'files:write'], challengeScope: 'files:write' } });
    try {
      const authedFetch = withCrossAppAccess(fetch, stackOptions(challenged));
      expect((await authedFetch(challenged.mcp.url, listToolsInit())).status).toBe(200);
      expect(challenged.idp.requests.find((r) => r.method === 'POST')?.form.scope).toBe('files:write');
    } finally {
      await challenged.close();
    }
  });
});

describe('scopes_supported with resource and client.issuer both set', () => {
  it('is read alongside the authorization server metadata, so the requested scope does not change when the issuer is pinned', async () => {
    const scoped = await startStack({ mcp: { scopesSupported: ['files:read', 'files:write'] } });
    try {
      const pinned = stackOptions(scoped, {
        resource: scoped.mcp.resource,
        client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: scoped.as.issuer },
      });
      expect((await withCrossAppAccess(fetch, pinned)(scoped.mcp.url, listToolsInit())).status).toBe(200);
      const exchange = scoped.idp.requests.find((r) => r.method === 'POST');
      const grant = scoped.as.requests.find((r) => r.method === 'POST');
      expect(exchange?.form.scope).toBe('files:read files:write');
      expect(grant?.form.scope).toBe('files:read files:write');
    } finally {
      await scoped.close();
    }
  });

  it('an absent protected-resource metadata document does not stop a pinned configuration', async () => {
    const bare = await startStack({ mcp: { prm: 'header-only' } });
    try {
      const pinned = stackOptions(bare, {
        resource: bare.mcp.resource,
        client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', issuer: bare.as.issuer },
      });
      expect((await withCrossAppAccess(fetch, pinned)(bare.mcp.url, listToolsInit())).status).toBe(200);
      expect(bare.mcp.counters.unauthorized).toBe(0);
    } finally {
      await bare.close();
    }
  });
});
