/** Wrapper options and MCP requests for tests against one loopback {@link Stack}. */
import type { CrossAppAccessEngineOptions, CrossAppAccessOptions } from '../../src/index.js';
import { DEFAULT_AS_CLIENT, type Stack } from '../servers/stack.js';

/** Options for a wrapper talking to `stack`: IdP discovered from its issuer, AS credentials bound on first use. */
export function stackOptions(stack: Stack, overrides: Partial<CrossAppAccessOptions> = {}): CrossAppAccessOptions {
  return {
    idToken: () => stack.idp.mintIdToken(),
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    ...overrides,
  };
}

/** Engine options for `stack` (no idToken: each user's session brings one): IdP discovered, AS credentials bound on first use. */
export function stackEngineOptions(stack: Stack, overrides: Partial<CrossAppAccessEngineOptions> = {}): CrossAppAccessEngineOptions {
  return {
    idp: { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: DEFAULT_AS_CLIENT.clientId, clientSecret: DEFAULT_AS_CLIENT.clientSecret },
    ...overrides,
  };
}

/** The headers the MCP Streamable HTTP transport sends with a POST. */
export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** A JSON-RPC request body. */
export function jsonRpc(id: number, method: string, params: Record<string, unknown> = {}): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}

/** A fetch `init` for an MCP `tools/list` POST. */
export function listToolsInit(id = 1): RequestInit {
  return { method: 'POST', headers: MCP_HEADERS, body: jsonRpc(id, 'tools/list') };
}
