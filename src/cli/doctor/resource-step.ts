import type { BearerChallenge } from '../../oauth/challenge.js';
import { checkResource, protectedResourceUrls } from '../../oauth/discovery.js';
import { CrossAppAccessError } from '../../errors.js';
import { isLoopbackHost, isWithinResource, parseUrl, requireSecureUrl } from '../../url-rules.js';
import { firstDocument } from './documents.js';
import { Diagnosis, see, type Step } from './step.js';
import type { DoctorConfig } from './types.js';

export interface FoundResource {
  resource: string;
  authorizationServers: string[];
  scopesSupported: string[] | undefined;
}

/** What one URL's difference from another is, when it is a usual one (a slash, localhost against 127.0.0.1). */
export function difference(actual: string, configured: string): string {
  if (actual.replace(/\/$/, '') === configured.replace(/\/$/, '')) return actual.endsWith('/') ? ', with its trailing slash' : ', without a trailing slash';
  const a = parseUrl(actual);
  const c = parseUrl(configured);
  if (a && c && a.pathname === c.pathname && a.port === c.port && a.hostname !== c.hostname) return ` (the host differs: ${a.hostname}, not ${c.hostname})`;
  return '';
}

/**
 * The resource does not cover the URL (RFC 9728 §3.3): no token for it may go there. When the two
 * differ only in how they spell this machine (localhost, 127.0.0.1, [::1]), the fix is the URL the
 * server names; otherwise it describes another resource, which the doctor must not steer anyone to.
 */
function notCovering(resource: string, mcpUrl: string, error: CrossAppAccessError): Diagnosis {
  const named = parseUrl(resource);
  const respelled = parseUrl(mcpUrl);
  if (named && respelled && isLoopbackHost(named.hostname) && isLoopbackHost(respelled.hostname)) {
    const used = respelled.host;
    respelled.host = named.host;
    if (isWithinResource(respelled, named)) {
      const which = respelled.href === resource ? 'the resource its metadata names' : `within the resource its metadata names, ${resource}`;
      return new Diagnosis(
        `resource_mismatch: ${error.message}`,
        `Use ${respelled.href}, ${which}: ${used} and ${named.host} are the same machine, but a token is bound to the resource as the server spells it (RFC 9728 §3.3).${see('resource-mismatch')}`,
      );
    }
  }
  return new Diagnosis(
    `resource_mismatch: ${error.message}`,
    `The metadata describes another resource than ${mcpUrl}, so no token for it may be sent there (RFC 9728 §3.3): check that this URL is the MCP endpoint; otherwise its operator must publish metadata whose resource covers it.${see('resource-mismatch')}`,
  );
}

/** Step 2: the protected-resource metadata (RFC 9728 §3), where it was found, and its `resource`. */
export async function protectedResource(config: DoctorConfig, challenge: BearerChallenge, step: Step): Promise<FoundResource> {
  const target = requireSecureUrl(config.mcpUrl, 'The MCP server URL', 'discovery');
  const found = await firstDocument(protectedResourceUrls(target, challenge.resourceMetadata), 'the protected-resource metadata', config, step);
  if (!found) {
    throw new Diagnosis('No protected-resource metadata was found at any of those URLs.', `The MCP server must publish RFC 9728 metadata (its 401 challenge's resource_metadata, or /.well-known/oauth-protected-resource); ask its operator.${see('no-metadata')}`);
  }
  const { resource, authorization_servers: servers, scopes_supported: scopes } = found.body;
  if (typeof resource !== 'string' || !Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string')) {
    throw new Diagnosis(`The metadata at ${found.url} lacks resource or authorization_servers.`, `The MCP server publishes invalid RFC 9728 metadata; ask its operator.${see('invalid-metadata')}`);
  }
  step.note(`resource: ${resource}`);
  step.note(`authorization_servers: ${servers.join(', ')}`);
  if (Array.isArray(scopes)) step.note(`scopes_supported: ${scopes.join(' ')}`);
  if (config.resource !== undefined && config.resource !== resource) {
    throw new Diagnosis(`The server names resource \`${resource}\`; you configured \`${config.resource}\`.`, `Set resource to exactly \`${resource}\`${difference(resource, config.resource)}.${see('resource-mismatch')}`);
  }
  // The library's own rule: the URL must lie within the resource (same origin, path prefix).
  try {
    checkResource(resource, target, undefined, found.url);
  } catch (error) {
    if (error instanceof CrossAppAccessError && error.code === 'resource_mismatch') throw notCovering(resource, config.mcpUrl, error);
    throw error;
  }
  return { resource, authorizationServers: servers as string[], scopesSupported: Array.isArray(scopes) ? (scopes as string[]) : undefined };
}
