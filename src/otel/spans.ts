import type { Attributes } from '@opentelemetry/api';
import type { CrossAppAccessEvent } from '../events.js';

/** A span to record for an event: its name, its attributes, and the error it ended with. */
export interface SpanRecord {
  name: string;
  attributes: Attributes;
  error?: string | undefined;
}

/**
 * The span of an event that is a step of the flow (discovery, the token exchange, the jwt-bearer
 * grant, or a failure of one of them); undefined for the others. Attributes follow the OpenTelemetry
 * semantic conventions for HTTP clients; URLs are as the events give them (never a query); no token,
 * secret or user key.
 */
export function spanOf(event: CrossAppAccessEvent): SpanRecord | undefined {
  switch (event.type) {
    case 'discovery':
      return { name: 'cross-app-access discovery', attributes: { ...http('GET', event.url), 'cross_app_access.document': event.document } };
    case 'token_exchange':
      return {
        name: 'cross-app-access token_exchange',
        attributes: { ...http('POST', event.tokenEndpoint), 'cross_app_access.audience': event.audience, 'cross_app_access.resource': event.resource, ...(event.scope ? { 'cross_app_access.scope': event.scope } : {}) },
      };
    case 'jwt_bearer':
      return {
        name: 'cross-app-access jwt_bearer',
        attributes: { ...http('POST', event.tokenEndpoint), 'cross_app_access.resource': event.resource, ...(event.scope ? { 'cross_app_access.scope': event.scope } : {}) },
      };
    case 'failure':
      if (event.stage !== 'discovery' && event.stage !== 'token_exchange' && event.stage !== 'jwt_bearer') return undefined;
      return {
        name: `cross-app-access ${event.stage}`,
        attributes: {
          'error.type': event.code,
          ...(event.status === undefined ? {} : { 'http.response.status_code': event.status }),
          ...(event.error === undefined ? {} : { 'cross_app_access.oauth.error': event.error }),
        },
        error: event.code,
      };
    default:
      return undefined;
  }
}

/** HTTP client attributes (OpenTelemetry semantic conventions) of a request to `url`. */
function http(method: string, url: string): Attributes {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    return { 'http.request.method': method };
  }
  const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
  return { 'http.request.method': method, 'url.full': `${parsed.origin}${parsed.pathname}`, 'server.address': parsed.hostname, 'server.port': port };
}
