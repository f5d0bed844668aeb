// The dev MCP server (src/cli/dev/servers/mcp-server.ts, shipped for `cross-app-access dev`) with the
// tests' fault injection: `override` (a canned reply instead of the server's own).
import { startMcpServer as startDevMcpServer, type DevMcpServer, type McpServerOptions } from '../../src/cli/dev/servers/mcp-server.js';
import type { OverrideHook } from './http-util.js';

export * from '../../src/cli/dev/servers/mcp-server.js';

export interface McpTestServer extends DevMcpServer {
  /** Fault injection: a returned reply is sent instead of the normal one (counters still count). */
  override: OverrideHook | undefined;
}

export async function startMcpServer(options: Omit<McpServerOptions, 'answerFirst'>): Promise<McpTestServer> {
  let faulty: McpTestServer | undefined;
  const mcp = await startDevMcpServer({ ...options, answerFirst: (req) => faulty?.override?.(req) });
  faulty = Object.assign(mcp, { override: undefined as OverrideHook | undefined });
  return faulty;
}
