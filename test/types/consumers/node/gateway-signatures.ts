// The gateway signatures as docs/gateways.md and the README write them, with and without the DOM
// lib: a user's idToken function is told its user key as a string (no `user!`).
import { AsyncLocalStorage } from 'node:async_hooks';
import { CrossAppAccess, type FetchSession, type UserIdTokenSource } from 'cross-app-access';

declare const sessions: { idTokenFor(user: string, options: { forceRefresh: boolean }): Promise<string> };
declare const xaa: CrossAppAccess;
const requestContext = new AsyncLocalStorage<{ userId: string }>();

export const gatewayFetch = xaa.fetch(fetch, {
  user: () => requestContext.getStore()?.userId,
  idToken: ({ user, reason }) => sessions.idTokenFor(user, { forceRefresh: reason !== 'initial' }),
});

const idToken: UserIdTokenSource = ({ user }) => sessions.idTokenFor(user, { forceRefresh: false });
export const session: FetchSession = { user: 'alice', idToken };
export const token = xaa.getAccessToken({ user: 'alice', idToken: ({ user }) => sessions.idTokenFor(user, { forceRefresh: false }), url: 'https://mcp.example.com/mcp' });
