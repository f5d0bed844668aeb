/**
 * How each implementation is built, over the same loopback servers and the same v2 MCP client:
 *
 * - ours: `withCrossAppAccess(countingFetch, …)` (the built package, imported by name) as the
 *   `fetch` of `@modelcontextprotocol/client`'s `StreamableHTTPClientTransport`;
 * - sdk: `@modelcontextprotocol/client`'s `CrossAppAccessProvider` as that transport's
 *   `authProvider`, with `requestJwtAuthorizationGrant` for the IdP leg.
 *
 * Both send every HTTP request through a {@link CountingFetch}, which counts and classifies them.
 */
import {
  Client,
  CrossAppAccessProvider,
  StreamableHTTPClientTransport,
  requestJwtAuthorizationGrant,
  type CrossAppAccessContext,
} from '@modelcontextprotocol/client';
import { withCrossAppAccess } from 'cross-app-access';
import { startStack, type Stack } from '../test/servers/stack.js';

export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Where a request went. */
export type Category = 'mcp' | 'metadata' | 'idp' | 'as' | 'other';
export type Counts = Record<Category, number> & { total: number };

export function zeroCounts(): Counts {
  return { mcp: 0, metadata: 0, idp: 0, as: 0, other: 0, total: 0 };
}

/**
 * A fetch beneath an implementation that counts every request it makes, by category, and notes
 * the moment the first authenticated MCP response (a POST to the MCP endpoint answered 200) arrives,
 * with the counts up to and including it.
 */
export class CountingFetch {
  readonly counts: Counts = zeroCounts();
  firstAuthorized: { at: number; counts: Counts; criticalPath: number } | undefined;
  readonly fetch: FetchFn;
  /** Every request's start and end (performance.now()), for the critical path. */
  private readonly spans: { start: number; end: number }[] = [];

  constructor(stack: Stack, base: FetchFn = fetch) {
    const idp = stack.idp.origin;
    const as = stack.as.origin;
    const mcp = stack.mcp.origin;
    const mcpUrl = stack.mcp.url;
    const classify = (url: URL): Category => {
      if (url.pathname.startsWith('/.well-known/')) return 'metadata';
      if (url.origin === idp) return 'idp';
      if (url.origin === as) return 'as';
      if (url.origin === mcp) return 'mcp';
      return 'other';
    };
    this.fetch = async (input, init) => {
      const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const url = new URL(href);
      const category = classify(url);
      this.counts[category]++;
      this.counts.total++;
      const span = { start: performance.now(), end: Infinity };
      this.spans.push(span);
      const response = await base(input, init);
      span.end = performance.now();
      if (this.firstAuthorized === undefined && category === 'mcp' && method === 'POST' && response.status === 200 && url.href === mcpUrl) {
        this.firstAuthorized = { at: performance.now(), counts: { ...this.counts }, criticalPath: criticalPath(this.spans, span) };
      }
      return response;
    };
  }
}

/**
 * The round trips one after another before `last` ended: from `last`, back through the request that
 * ended latest before each one started. Requests made alongside (IdP discovery beside the MCP
 * server's) do not count.
 */
export function criticalPath(spans: readonly { start: number; end: number }[], last: { start: number; end: number }): number {
  let length = 1;
  let current = last;
  while (true) {
    let before: { start: number; end: number } | undefined;
    for (const span of spans) if (span.end <= current.start && (!before || span.end > before.end)) before = span;
    if (!before) return length;
    length++;
    current = before;
  }
}

/**
 * The loopback stack used by every section. The authorization server's metadata gets an
 * `authorization_endpoint`: the SDK's RFC 8414 schema requires one and fails discovery without it,
 * although RFC 8414 §2 makes it optional for a server with no grant type that uses it (ours serves
 * only jwt-bearer). Both contenders see the same metadata; this package ignores the member.
 */
export async function startBenchStack(): Promise<Stack> {
  const asMetadata: Record<string, unknown> = {};
  const stack = await startStack({ as: { metadataOverrides: asMetadata } });
  asMetadata.authorization_endpoint = `${stack.as.issuer}/authorize`;
  return stack;
}

/** A variant of this package's configuration. */
export interface OursConfig {
  /** Pass `resource` (the hint that skips the first 401). */
  resource: boolean;
  /** Give the IdP's token endpoint instead of its issuer (skips IdP discovery, as the SDK contender is configured). */
  idpTokenEndpoint?: boolean;
  /** Pin the authorization server (`client.issuer`): with `resource`, no discovery before its metadata. */
  clientIssuer?: boolean;
}

/** `withCrossAppAccess` over `next`, configured like the README. */
export function makeOursFetch(stack: Stack, next: FetchFn, config: OursConfig) {
  return withCrossAppAccess(next, {
    idToken: () => stack.idp.mintIdToken(),
    idp: config.idpTokenEndpoint
      ? { tokenEndpoint: stack.idp.tokenEndpoint, clientId: stack.idp.clientId }
      : { issuer: stack.idp.issuer, clientId: stack.idp.clientId },
    client: { clientId: 'mcp-client', clientSecret: 'mcp-secret', ...(config.clientIssuer ? { issuer: stack.as.issuer } : {}) },
    ...(config.resource ? { resource: stack.mcp.resource } : {}),
  });
}

/** The SDK's assertion callback: the RFC 8693 exchange at the IdP with `requestJwtAuthorizationGrant`. */
async function sdkAssertion(stack: Stack, ctx: CrossAppAccessContext): Promise<string> {
  return (
    await requestJwtAuthorizationGrant({
      tokenEndpoint: stack.idp.tokenEndpoint,
      audience: ctx.authorizationServerUrl,
      resource: ctx.resourceUrl,
      idToken: await stack.idp.mintIdToken(),
      clientId: stack.idp.clientId,
      scope: ctx.scope,
      fetchFn: ctx.fetchFn,
    })
  ).jwtAuthGrant;
}

/** The SDK's `CrossAppAccessProvider`, configured as its documentation shows. */
export function makeSdkProvider(stack: Stack, fetchFn: FetchFn, onAssertion?: (ctx: CrossAppAccessContext) => void): CrossAppAccessProvider {
  return new CrossAppAccessProvider({
    assertion: (ctx) => {
      onAssertion?.(ctx);
      return sdkAssertion(stack, ctx);
    },
    clientId: 'mcp-client',
    clientSecret: 'mcp-secret',
    expectedIssuer: stack.as.issuer,
    fetchFn,
  });
}

/** How one contender authenticates a transport: a fetch wrapper (ours) or an auth provider (sdk). */
export type Auth =
  | { kind: 'ours'; fetch: FetchFn }
  | { kind: 'sdk'; provider: CrossAppAccessProvider; fetch: FetchFn };

export type Contender = 'ours' | 'sdk';

/** A fresh v2 transport over `auth`, for the stack's MCP endpoint. */
export function makeTransport(stack: Stack, auth: Auth): StreamableHTTPClientTransport {
  const url = new URL(stack.mcp.url);
  return auth.kind === 'ours'
    ? new StreamableHTTPClientTransport(url, { fetch: auth.fetch })
    : new StreamableHTTPClientTransport(url, { authProvider: auth.provider, fetch: auth.fetch });
}

/** A new v2 client connected over a new transport. */
export async function connectClient(stack: Stack, auth: Auth, name = 'bench'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(makeTransport(stack, auth));
  return client;
}

/** A new authentication for `contender`, sending its requests through `next`. */
export function makeAuth(stack: Stack, contender: Contender, next: FetchFn, config: OursConfig = { resource: true }): Auth {
  return contender === 'ours'
    ? { kind: 'ours', fetch: makeOursFetch(stack, next, config) }
    : { kind: 'sdk', provider: makeSdkProvider(stack, next), fetch: next };
}

export { Client };
export type { Stack };

/**
 * Checks the SDK contender against these servers: what it sends as the ID-JAG audience and resource,
 * and whether it completes without the `authorization_endpoint` member. Returns findings, in words.
 */
export async function probeSdk(stack: Stack): Promise<string[]> {
  const findings: string[] = [];
  let seen: { as: string; resource: string } | undefined;
  const provider = makeSdkProvider(stack, fetch, (ctx) => {
    seen = { as: ctx.authorizationServerUrl, resource: ctx.resourceUrl };
  });
  const client = await connectClient(stack, { kind: 'sdk', provider, fetch });
  await client.close();
  if (seen) {
    findings.push(
      `The SDK passes the assertion callback \`authorizationServerUrl\` = \`${seen.as}\` (${seen.as === stack.as.issuer ? 'exactly' : 'NOT'} the authorization server's issuer) and \`resourceUrl\` = \`${seen.resource}\` (${seen.resource === stack.mcp.resource ? 'exactly' : 'NOT'} the resource in the protected-resource metadata), so the authorization server's exact \`aud\` and \`resource\` checks ${seen.as === stack.as.issuer && seen.resource === stack.mcp.resource ? 'pass; no trailing-slash normalisation interferes here (the issuer has no path)' : 'may fail'}.`,
    );
  }

  const plain = await startStack();
  try {
    const bare = makeSdkProvider(plain, fetch);
    const c = new Client({ name: 'bench-probe', version: '1.0.0' });
    try {
      await c.connect(makeTransport(plain, { kind: 'sdk', provider: bare, fetch }));
      findings.push('The SDK provider completes against an authorization server whose metadata has no `authorization_endpoint`.');
    } catch (error) {
      const message = String((error as Error).message ?? error).replace(/\s+/g, ' ').slice(0, 160);
      findings.push(
        `Against the test authorization server as it is (jwt-bearer only, no \`authorization_endpoint\` in its RFC 8414 metadata, which RFC 8414 §2 allows when no grant type uses that endpoint), the SDK provider fails discovery before any token request: \`${(error as Error).name}: ${message}\`. This package does not need the member. For the benchmark the stack's metadata gets \`authorization_endpoint: <issuer>/authorize\` (an endpoint nobody calls), for both contenders.`,
      );
    } finally {
      await c.close().catch(() => undefined);
    }
  } finally {
    await plain.close();
  }
  return findings;
}
