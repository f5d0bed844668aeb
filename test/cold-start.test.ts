/**
 * The first request's discoveries (the MCP server's protected-resource metadata, its authorization
 * server's metadata, the IdP's) run alongside each other, not one after another. Real loopback servers.
 */
import { describe, expect, it } from 'vitest';
import { withCrossAppAccess, type FetchLike } from '../src/index.js';
import { listToolsInit } from './helpers/stack-options.js';
import { useStack } from './helpers/use-stack.js';

const fixture = useStack();
const options = fixture.options;

describe('cold start', () => {
  it('IdP discovery runs alongside the MCP server’s and the authorization server’s, not after them', async () => {
    const { stack } = fixture;
    let idpAsked!: () => void;
    const idpMetadataRequested = new Promise<void>((resolve) => (idpAsked = resolve));
    // The AS metadata answer is held until the IdP's metadata has been asked for: run one after the
    // other, the two discoveries would wait on each other forever.
    const overlapping: FetchLike = async (url, init) => {
      const href = String(url);
      if (href.startsWith(stack.idp.issuer) && href.includes('/.well-known/')) idpAsked();
      if (href.startsWith(stack.as.issuer) && href.includes('/.well-known/')) await idpMetadataRequested;
      return fetch(url, init);
    };
    const authedFetch = withCrossAppAccess(overlapping, options());
    expect((await authedFetch(stack.mcp.url, listToolsInit())).status).toBe(200);
    expect(stack.idp.counters.metadata).toBe(1);
  }, 5_000);
});
