// The platform's fetch in, the platform's fetch out, with a Request or a URL as input.
import { withCrossAppAccess, type CrossAppAccessFetch, type CrossAppAccessOptions, type FetchLike } from 'cross-app-access';

declare const options: CrossAppAccessOptions;

const authedFetch: CrossAppAccessFetch = withCrossAppAccess(fetch, options);
export const response: Promise<Response> = authedFetch(new Request('https://mcp.tools.example/team-a/mcp', { method: 'POST', body: '{}' }));
export const another: Promise<Response> = authedFetch(new URL('https://mcp.tools.example/team-a/mcp'), { signal: AbortSignal.timeout(5000) });

// FetchLike (the MCP SDK's shape) is the type to write a fetch of one's own against (the TSDoc example).
const logging: FetchLike = (url, init) => {
  console.log(String(url));
  return fetch(url, init);
};
export const logged: typeof fetch = withCrossAppAccess(logging, options);

// README "Wrapping global fetch".
const clientSecret = process.env.MCP_CLIENT_SECRET;
globalThis.fetch = withCrossAppAccess(globalThis.fetch, {
  ...options,
  resource: 'https://mcp.tools.example/team-a/mcp',
  client: { clientId: 'wiki-app', clientSecret, issuer: 'https://login.tools.example/tenant-7' },
});

// README "One wrapper per signed-in user".
interface Session {
  id: string;
  idToken(): Promise<string>;
}
declare const shared: Omit<CrossAppAccessOptions, 'idToken'>;
const perUser = new Map<string, typeof fetch>();
export function fetchFor(session: Session) {
  let f = perUser.get(session.id);
  if (!f) perUser.set(session.id, (f = withCrossAppAccess(fetch, { ...shared, idToken: () => session.idToken() })));
  return f;
}
