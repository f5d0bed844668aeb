import type { Credential, DpopCredential } from '../engine/credential.js';
import { discardBody, type FetchLike } from '../oauth/http.js';
import { sendPrepared, sendRequest, type OutgoingRequest } from './body.js';

/**
 * Sends the request once with its credential: a Bearer token as `Authorization: Bearer`; a DPoP-bound
 * one as `Authorization: DPoP` with a new proof for this URL (RFC 9449 §7.1), and once more with a new
 * proof when the server asks for its nonce (§9), the body replayed and no new token.
 */
export function sendAuthorized(next: FetchLike, request: OutgoingRequest, credential: Credential | undefined, redirect?: RequestRedirect): Promise<Response> {
  if (typeof credential !== 'object') return sendRequest(next, request, credential, redirect);
  return sendWithProof(next, request, credential, redirect);
}

async function sendWithProof(next: FetchLike, request: OutgoingRequest, credential: DpopCredential, redirect: RequestRedirect | undefined): Promise<Response> {
  const method = request.init.method ?? 'GET';
  const response = await sendPrepared(next, request, credential.authorization, await credential.proof(method, request.url), redirect);
  // A stream body sent once cannot be sent again: the 401 goes back (the engine's loop sees it).
  if (!credential.asksForNewProof(request.url, response.status, response.headers) || !request.replayable) return response;
  await discardBody(response);
  const again = await sendPrepared(next, request, credential.authorization, await credential.proof(method, request.url), redirect);
  credential.asksForNewProof(request.url, again.status, again.headers);
  return again;
}
