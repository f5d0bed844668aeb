import type { z } from 'zod';
import { ConfigurationError } from '../errors.js';
import { NO_RETRY, type RetryPolicy } from '../oauth/retry.js';
import type { FetchLike } from '../fetch-types.js';
import type { TokenStore } from '../stores/token-store.js';
import { resourceBoundary } from '../url-rules.js';
import { configurationError } from './messages.js';
import { engineSchema, schema, scopeToken } from './schema.js';
import type { ResolvedOptions, ResolvedWrapperOptions } from './types.js';
import { DEFAULTS } from './defaults.js';
import { noIdToken, requireOneSubject } from './workload-options.js';

/**
 * Retries, with an overall deadline: every attempt timing out and every wait at its longest
 * (our rule: retries respect a total deadline).
 */
function retryPolicy(retry: false | { retries?: number; baseDelay?: number; maxDelay?: number } | undefined, timeoutMs: number): RetryPolicy {
  if (retry === false) return NO_RETRY;
  const retries = retry?.retries ?? DEFAULTS.retries;
  const maxDelayMs = retry?.maxDelay ?? DEFAULTS.retryMaxDelayMs;
  return { retries, baseDelayMs: retry?.baseDelay ?? DEFAULTS.retryBaseDelayMs, maxDelayMs, maxElapsedMs: timeoutMs * (retries + 1) + maxDelayMs * retries };
}

/** Splits, de-duplicates and sorts scopes (RFC 6749 §3.3: order does not matter); undefined for none. */
export function normaliseScopes(scope: string | readonly string[] | undefined): string[] | undefined {
  if (scope === undefined) return undefined;
  const list = typeof scope === 'string' ? scope.split(' ') : scope;
  const unique = [...new Set(list.filter((s) => s !== ''))].sort();
  return unique.length > 0 ? unique : undefined;
}

/**
 * Validates a one-user wrapper's options once, when it is made (nothing is validated per request).
 * Throws a {@link ConfigurationError} naming the first bad option.
 */
export function resolveOptions(input: unknown): ResolvedWrapperOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigurationError('options', 'expected an object');
  requireOneSubject(input, 'wrapper');
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw configurationError(parsed.error.issues[0], input);
  const idToken = parsed.data.idToken ?? noIdToken;
  return Object.freeze({
    ...resolved(parsed.data, undefined),
    idToken: typeof idToken === 'string' ? () => idToken : idToken,
    idTokenIsStatic: typeof idToken === 'string',
  });
}

/** Validates an engine's options once (see {@link resolveOptions}); an engine takes no `idToken`. */
export function resolveEngineOptions(input: unknown): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigurationError('options', 'expected an object');
  if ('idToken' in input) {
    throw new ConfigurationError('idToken', 'is not an engine option: give each user\'s idToken to xaa.fetch(fetch, { user, idToken }) or getAccessToken');
  }
  requireOneSubject(input, 'engine');
  const parsed = engineSchema.safeParse(input);
  if (!parsed.success) throw configurationError(parsed.error.issues[0], input);
  return Object.freeze(resolved(parsed.data, parsed.data.store));
}

function resolved(o: z.infer<typeof engineSchema>, store: TokenStore | undefined): ResolvedOptions {
  if (typeof o.scope === 'string') {
    for (const s of o.scope.split(' ').filter(Boolean)) {
      const token = scopeToken.safeParse(s);
      if (!token.success) throw new ConfigurationError('scope', token.error.issues[0]?.message ?? 'expected scope tokens (RFC 6749 §3.3)');
    }
  }
  const subjectTokenType = o.subjectTokenType ?? 'id_token';
  const idpList = o.idp ?? [];
  if (idpList.length > 1 && subjectTokenType !== 'id_token') {
    throw new ConfigurationError('idp', `is a list, which routes each ID token to its IdP by its iss claim; a ${subjectTokenType} subject token names no issuer: use one engine per IdP`);
  }
  const timeoutMs = o.timeout ?? DEFAULTS.timeoutMs;
  const issuers = new Set(idpList.map((idp) => idp.issuer));
  o.client.forEach((client, i) => {
    if (client.idp !== undefined && !issuers.has(client.idp)) throw new ConfigurationError(`client[${i}].idp`, 'must be the issuer of one of the IdPs in idp');
  });
  return {
    subjectTokenType,
    idps: Object.freeze(idpList.map((idp) => Object.freeze({ ...idp, partition: JSON.stringify([idp.issuer ?? idp.tokenEndpoint, idp.clientId]) }))),
    assertion: o.assertion,
    clients: Object.freeze(o.client.map((client) => Object.freeze({ ...client }))),
    scopes: normaliseScopes(o.scope),
    resources: Object.freeze((o.resource ?? []).map((resource) => {
      const url = new URL(resource);
      return Object.freeze({ resource, url, boundary: resourceBoundary(url) });
    })),
    timeoutMs,
    retry: retryPolicy(o.retry, timeoutMs),
    renewBeforeMs: o.renewBefore,
    defaultTokenLifetimeMs: o.defaultTokenLifetime ?? DEFAULTS.defaultTokenLifetimeMs,
    maxStepUps: o.maxStepUps ?? DEFAULTS.maxStepUps,
    maxReplayBodyBytes: o.maxReplayBodyBytes ?? DEFAULTS.maxReplayBodyBytes,
    maxCachedTokens: o.maxCachedTokens ?? DEFAULTS.maxCachedTokens,
    now: o.now ?? (() => Date.now()),
    onEvent: o.onEvent,
    checkIdJag: o.checkIdJag ?? true,
    dpop: o.dpop === false ? undefined : o.dpop,
    // Any WHATWG fetch takes the platform's RequestInit at run time, whatever its declarations say.
    oauthFetch: o.oauthFetch as FetchLike | undefined,
    store,
  };
}
