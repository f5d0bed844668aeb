/**
 * Cloudflare Agents (`agents`): one Agent (a Durable Object) per user, named by the user, whose
 * `createMcpOAuthProvider()` returns `xaa.authProvider(...)` (the MCP SDK v2 `AuthProvider` shape):
 * `addMcpServer` takes no fetch. Each user's Agent holds that user's MCP connection and session.
 * Run under `wrangler dev` (workerd), the `XAA_…` variables `npx cross-app-access dev` prints in a file
 * given with `--env-file` (without `export`), then `curl 'http://127.0.0.1:8787/whoami?user=alice'`.
 */
import { Agent, getAgentByName, type AgentMcpOAuthProvider } from 'agents';
import { CrossAppAccess } from 'cross-app-access';

interface Env {
  XaaAgent: DurableObjectNamespace<XaaAgent>;
  XAA_MCP_URL: string;
  XAA_IDP_ISSUER: string;
  XAA_IDP_CLIENT_ID: string;
  XAA_ID_TOKEN_URL: string;
  XAA_CLIENT_ID: string;
  XAA_CLIENT_SECRET: string; // a secret in production: `wrangler secret put XAA_CLIENT_SECRET`
}

/** One engine per isolate, shared by the Agents it runs (tokens are keyed by user). */
let engine: CrossAppAccess | undefined;
const xaaFor = (env: Env) =>
  (engine ??= new CrossAppAccess({
    idp: { issuer: env.XAA_IDP_ISSUER, clientId: env.XAA_IDP_CLIENT_ID },
    client: { clientId: env.XAA_CLIENT_ID, clientSecret: env.XAA_CLIENT_SECRET },
    resource: env.XAA_MCP_URL,
  }));

export class XaaAgent extends Agent<Env> {
  /** Agents calls this for every MCP server it connects (and reconnects after hibernation). */
  override createMcpOAuthProvider(): AgentMcpOAuthProvider {
    const provider = xaaFor(this.env).authProvider({
      user: this.name, // this Agent's user: one Agent, one MCP session, per user
      // Stands in for the user's SSO session: the dev IdP mints an ID token for any user (loopback only).
      idToken: async ({ user }) => ((await (await fetch(`${this.env.XAA_ID_TOKEN_URL}?sub=${encodeURIComponent(user)}`)).json()) as { id_token: string }).id_token,
      url: this.env.XAA_MCP_URL,
    });
    // The v2 SDK's transport takes this shape; Agents' type names only the older OAuthClientProvider.
    return provider as unknown as AgentMcpOAuthProvider;
  }

  override async onRequest(): Promise<Response> {
    const { id } = await this.addMcpServer('dev', this.env.XAA_MCP_URL);
    const tools = this.mcp.listTools().map((t) => t.name);
    const result = await this.mcp.callTool({ serverId: id, name: 'whoami', arguments: {} });
    const whoami = (result.content as Array<{ text?: string }>)[0]?.text;
    return Response.json({ tools, whoami });
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const user = url.searchParams.get('user'); // your Worker's authenticated user, not a query parameter
    if (url.pathname === '/') return new Response('GET /whoami?user=…\n');
    if (url.pathname !== '/whoami' || !user) return new Response('not found', { status: 404 });
    return (await getAgentByName(env.XaaAgent, user)).fetch(request);
  },
};
