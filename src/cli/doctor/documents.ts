import { CrossAppAccessError } from '../../errors.js';
import { MAX_METADATA_BYTES, requestJson } from '../../oauth/http.js';
import { reaching } from './network.js';
import { Diagnosis, see, type Step } from './step.js';
import type { DoctorConfig } from './types.js';

/**
 * The first of `urls` that answers a 2xx JSON object, with what each other one answered noted.
 * The library's discovery rules: a 4xx, a non-JSON 2xx or a redirect means "not here", try the next
 * URL; a 5xx or 429, or no answer at all, stops (RFC 9728 §3.1, RFC 8414 §3.1).
 */
export async function firstDocument(urls: string[], who: string, config: DoctorConfig, step: Step): Promise<{ url: string; body: Record<string, unknown> } | undefined> {
  for (const url of urls) {
    let result: Awaited<ReturnType<typeof requestJson>>;
    try {
      result = await reaching(url, who, config.timeoutMs, () => requestJson({ fetch, url, what: who, stage: 'discovery', timeoutMs: config.timeoutMs, maxBytes: MAX_METADATA_BYTES }));
    } catch (error) {
      if (error instanceof CrossAppAccessError && (error.code === 'invalid_response' || error.code === 'unexpected_redirect')) {
        step.note(`${url}: ${error.code === 'invalid_response' ? 'not a JSON object' : 'a redirect'}`);
        continue;
      }
      throw error;
    }
    if (result.ok) {
      step.note(`found at ${url}`);
      return { url, body: result.body };
    }
    if (result.status >= 500 || result.status === 429) {
      throw new Diagnosis(`${url} answered HTTP ${result.status}.`, `The server of ${who} is failing or overloaded: try again later, or ask its operator.${see('unreachable')}`);
    }
    step.note(`${url}: HTTP ${result.status}`);
  }
  return undefined;
}
