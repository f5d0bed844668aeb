import { bearerChallenge, type BearerChallenge } from '../../oauth/challenge.js';
import { reaching } from './network.js';
import { Diagnosis, see, type Step } from './step.js';
import type { DoctorConfig } from './types.js';

/** An MCP `initialize` request, as a client's first request is. */
export function initializeRequest(): { method: string; headers: Record<string, string>; body: string } {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cross-app-access-doctor', version: '1' } } }),
  };
}

/** One MCP `initialize` POST to the server, never following a redirect; the body is not read. */
export async function postInitialize(config: DoctorConfig, headers: Record<string, string> = {}): Promise<Response> {
  const request = initializeRequest();
  return reaching(config.mcpUrl, 'the MCP server', config.timeoutMs, async () => {
    const response = await fetch(config.mcpUrl, { ...request, headers: { ...request.headers, ...headers }, redirect: 'manual', signal: AbortSignal.timeout(config.timeoutMs) });
    await response.body?.cancel();
    return response;
  });
}

/** Step 1: the MCP server answers an unauthenticated request with 401 and a Bearer challenge (RFC 6750 §3, RFC 9728 §5.1). */
export async function probe(config: DoctorConfig, step: Step): Promise<BearerChallenge> {
  const response = await postInitialize(config);
  step.note(`POST ${config.mcpUrl} without a token: HTTP ${response.status}`);
  if (response.status >= 300 && response.status < 400) {
    throw new Diagnosis(`The MCP server redirects (to ${response.headers.get('location') ?? 'nowhere'}).`, `Use the final URL of the MCP endpoint: tokens never follow a redirect out of the resource.${see('redirects')}`);
  }
  if (response.status !== 401) {
    throw new Diagnosis('The MCP server did not answer 401 to a request without a token.', response.ok ? `The server does not require authorization at this URL: check that this is the protected MCP endpoint.${see('no-401')}` : `Check the URL: the server answered HTTP ${response.status}.${see('no-401')}`);
  }
  const challenge = bearerChallenge(response.headers);
  if (!challenge) {
    throw new Diagnosis('The 401 has no Bearer challenge in WWW-Authenticate.', `The MCP server must answer 401 with \`WWW-Authenticate: Bearer resource_metadata="…"\` (RFC 9728 §5.1); ask its operator.${see('no-401')}`);
  }
  step.note(`Bearer challenge: resource_metadata=${challenge.resourceMetadata ?? '(none)'}${challenge.scope ? `, scope="${challenge.scope}"` : ''}`);
  return challenge;
}
