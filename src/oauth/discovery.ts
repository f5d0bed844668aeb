import { z } from 'zod';
import { CrossAppAccessError, capitalize } from '../errors.js';
import type { CrossAppAccessEvent } from '../events.js';
import { LazyLru } from '../lazy-lru.js';
import { EndpointHolds } from './endpoint-holds.js';
import { MAX_METADATA_BYTES, requestJson, type FetchLike, type JsonResult } from './http.js';
import { retryEvents, withRetry, type RetryPolicy } from './retry.js';
import { isWithinResource, parseUrl, reportedUrl, requireSecureUrl } from '../url-rules.js';
import { DEFAULTS } from '../options/defaults.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
export const METADATA_TTL_MS = DEFAULTS.metadataTtlMs;
const FAILURE_BACKOFF_MS = DEFAULTS.discoveryFailureBackoffMs;

/** RFC 9728 protected-resource metadata, validated. */
export interface ProtectedResourceMetadata {
  /** The `resource`, verbatim: it goes on both legs and into the cache key. */
  resource: string;
  authorizationServers: string[];
  scopesSupported: string[] | undefined;
  /** Where the document was found. */
  url: string;
}

/** RFC 8414 / OpenID Discovery metadata, validated. */
export interface ServerMetadata {
  issuer: string;
  tokenEndpoint: string;
  authMethods: string[] | undefined;
  /** `token_endpoint_auth_signing_alg_values_supported`, for `private_key_jwt`. */
  signingAlgs: string[] | undefined;
  /**
   * True when the server lists grant profiles and the ID-JAG one is not among them: a workload's
   * jwt-bearer grant may go there, an ID-JAG may not (see {@link requireIdJagProfile}). Checked where
   * the metadata is used, not here: documents are shared by engines of both kinds.
   */
  withoutIdJagProfile?: true;
}

const stringList = z.array(z.string());
const prmSchema = z.looseObject({
  resource: z.string().min(1),
  authorization_servers: z.array(z.string().min(1)).min(1),
  scopes_supported: stringList.optional(),
});
const serverSchema = z.looseObject({
  issuer: z.string().min(1),
  token_endpoint: z.string().min(1),
  token_endpoint_auth_methods_supported: stringList.optional(),
  token_endpoint_auth_signing_alg_values_supported: stringList.optional(),
  grant_types_supported: stringList.optional(),
  authorization_grant_profiles_supported: stringList.optional(),
  identity_chaining_requested_token_types_supported: stringList.optional(),
});

type Fetched = { found: true; body: Record<string, unknown>; url: string } | { found: false; tried: string[] };

/**
 * A second level for discovery results, shared by a fleet (the engine's store, when it has one):
 * documents another process validated, with their remaining life, so a fresh process starts warm.
 * What it holds must be sealed: whoever can write to it must not be able to change where
 * credentials or tokens go.
 */
export interface SharedDocuments {
  /** The document under `name` and its remaining life in ms, or undefined (absent, unreadable, or the store is down). */
  read(name: string): Promise<{ value: unknown; remainingMs: number } | undefined>;
  /** Keeps `value` under `name` for `ttlMs` (in the background; failures are the store's to report). */
  write(name: string, value: unknown, ttlMs: number): void;
}

/**
 * Metadata discovery with a per-wrapper cache. Concurrent lookups of the same document share one
 * request; failures are not cached.
 */
export class Discovery {
  // Bounded: a wrapper around global fetch may meet many servers.
  private readonly documents = new LazyLru<string, { value: Promise<unknown>; expiresAt: number }>({ max: DEFAULTS.maxCachedDocuments });
  /** Documents forgotten here: their next read skips the fleet's copy (bounded by the issuers met). */
  private readonly stale = new Set<string>();

  constructor(
    private readonly fetch: FetchLike,
    private readonly timeoutMs: number,
    private readonly emit: (event: CrossAppAccessEvent) => void,
    private readonly now: () => number,
    private readonly retry: RetryPolicy,
    /** Endpoints that asked to be left alone (`Retry-After`), shared with the engine's token requests. */
    readonly holds: EndpointHolds = new EndpointHolds(),
    /** Documents other processes of a fleet discovered (see {@link SharedDocuments}). */
    private readonly shared?: SharedDocuments,
  ) {}

  private cached<T>(key: string, load: () => Promise<T>, isDocument: (value: unknown) => value is T): Promise<T> {
    const hit = this.documents.built?.get(key);
    if (hit && hit.expiresAt > this.now()) return hit.value as Promise<T>;
    const entry = { value: undefined as unknown as Promise<unknown>, expiresAt: this.now() + METADATA_TTL_MS };
    const value = this.shared ? this.fromShared(key, load, isDocument, entry) : load();
    entry.value = value;
    this.documents.cache.set(key, entry);
    // A failure (already retried) is kept only for a short back-off.
    value.catch(() => {
      entry.expiresAt = Math.min(entry.expiresAt, this.now() + FAILURE_BACKOFF_MS);
    });
    return value;
  }

  /**
   * A memory miss with a fleet: the document another process validated, for the rest of its life;
   * else discovered here and shared for the same hour as in memory.
   */
  private async fromShared<T>(key: string, load: () => Promise<T>, isDocument: (value: unknown) => value is T, entry: { expiresAt: number }): Promise<T> {
    const shared = this.shared!;
    // A document dropped here (its endpoint seemed to move) is read again from its server, not the fleet.
    const found = this.stale.delete(key) ? undefined : await shared.read(key);
    if (found && isDocument(found.value) && found.remainingMs > 0) {
      entry.expiresAt = this.now() + Math.min(found.remainingMs, METADATA_TTL_MS);
      return found.value;
    }
    const value = await load();
    shared.write(key, value, METADATA_TTL_MS);
    return value;
  }

  /** One metadata GET; 5xx and 429 are errors here so that they are retried. */
  private async fetchDocument(url: string, what: string): Promise<JsonResult> {
    const result = await requestJson({ fetch: this.fetch, url, what, stage: 'discovery', timeoutMs: this.timeoutMs, maxBytes: MAX_METADATA_BYTES, holds: this.holds });
    if (!result.ok && (result.status >= 500 || result.status === 429)) {
      throw new CrossAppAccessError(`${capitalize(what)} at ${reportedUrl(url)} answered HTTP ${result.status}.`, {
        code: 'http_error',
        stage: 'discovery',
        status: result.status,
        retryAfter: result.retryAfter,
      });
    }
    return result;
  }

  /** Tries each URL in order; the first 2xx JSON object wins (RFC 9728 §3.1, RFC 8414 §3.1). */
  private async firstDocument(
    urls: string[],
    document: 'protected_resource' | 'authorization_server' | 'idp',
    what: string,
  ): Promise<Fetched> {
    const tried: string[] = [];
    for (const url of urls) {
      const started = this.now();
      let result: JsonResult;
      try {
        result = await withRetry(() => this.fetchDocument(url, what), this.retry, retryEvents(this.emit));
      } catch (error) {
        // A non-JSON 2xx or a redirect means "not here": try the next URL. Anything else is a real failure.
        if (error instanceof CrossAppAccessError && (error.code === 'invalid_response' || error.code === 'unexpected_redirect')) {
          tried.push(`${reportedUrl(url)} (${error.status ?? 'no'} ${error.code === 'invalid_response' ? 'non-JSON' : 'redirect'})`);
          continue;
        }
        throw error;
      }
      if (result.ok) {
        this.emit({ type: 'discovery', document, url: reportedUrl(url), durationMs: this.now() - started });
        return { found: true, body: result.body, url };
      }
      tried.push(`${reportedUrl(url)} (${result.status})`);
    }
    return { found: false, tried };
  }

  /**
   * The MCP server's protected-resource metadata (RFC 9728): from the challenge's `resource_metadata`,
   * else the path-aware well-known URL, else the root one (RFC 9728 §3.1, §5.1), checked against the URL
   * that was requested (RFC 9728 §3.3) or against the configured resource.
   */
  protectedResource(target: URL, challengeUrl: string | undefined, configuredResource: string | undefined): Promise<ProtectedResourceMetadata> {
    const urls = protectedResourceUrls(target, challengeUrl);
    return this.cached(`prm ${urls.join(' ')} ${configuredResource ?? ''}`, async () => {
      const what = 'the MCP server’s protected-resource metadata';
      const fetched = await this.firstDocument(urls, 'protected_resource', what);
      if (!fetched.found) {
        throw new CrossAppAccessError(`No protected-resource metadata (RFC 9728) was found; tried ${fetched.tried.join(', ')}.`, {
          code: 'metadata_not_found',
          stage: 'discovery',
        });
      }
      const parsed = prmSchema.safeParse(fetched.body);
      if (!parsed.success) throw invalidMetadata(what, reportedUrl(fetched.url), parsed.error);
      const prm = parsed.data;
      checkResource(prm.resource, target, configuredResource, reportedUrl(fetched.url));
      return {
        resource: prm.resource,
        authorizationServers: prm.authorization_servers,
        scopesSupported: prm.scopes_supported,
        url: fetched.url,
      };
    }, isProtectedResourceMetadata);
  }

  /**
   * Drops an issuer's cached metadata, so that the next {@link serverMetadata} reads it again: for a
   * token endpoint that seems to have moved (RFC 8414 §3 metadata may change).
   */
  forget(issuer: string, role: 'authorization_server' | 'idp'): void {
    this.documents.built?.delete(`${role} ${issuer}`);
    if (this.shared) this.stale.add(`${role} ${issuer}`);
  }

  /**
   * RFC 8414 / OpenID Discovery metadata for an issuer, with the exact URL order for issuers with and
   * without a path (RFC 8414 §3.1, §5; OpenID Connect Discovery §4) and exact issuer equality
   * (RFC 8414 §3.3).
   */
  serverMetadata(issuer: string, role: 'authorization_server' | 'idp'): Promise<ServerMetadata> {
    return this.cached(`${role} ${issuer}`, async () => {
      const what = role === 'idp' ? 'the IdP metadata' : 'the authorization server metadata';
      const issuerUrl = requireSecureUrl(issuer, role === 'idp' ? 'The IdP issuer' : `The authorization server ${issuer}`, 'discovery');
      const fetched = await this.firstDocument(role === 'idp' ? idpMetadataUrls(issuerUrl) : serverMetadataUrls(issuerUrl), role, what);
      if (!fetched.found) {
        throw new CrossAppAccessError(`No metadata was found for issuer ${issuer}; tried ${fetched.tried.join(', ')}.`, {
          code: 'metadata_not_found',
          stage: 'discovery',
        });
      }
      const parsed = serverSchema.safeParse(fetched.body);
      if (!parsed.success) throw invalidMetadata(what, reportedUrl(fetched.url), parsed.error);
      const meta = parsed.data;
      // Raw string comparison, no normalisation of case, port or slash (RFC 8414 §3.3).
      if (meta.issuer !== issuer) {
        throw new CrossAppAccessError(
          `${capitalize(what)} at ${reportedUrl(fetched.url)} names issuer "${meta.issuer}", which is not identical to "${issuer}"; the document was not used.`,
          { code: 'issuer_mismatch', stage: 'discovery' },
        );
      }
      requireSecureUrl(meta.token_endpoint, `The token endpoint of ${issuer}`, 'discovery');
      if (role === 'authorization_server') checkProfile(meta, issuer);
      else if (meta.grant_types_supported && !meta.grant_types_supported.includes(TOKEN_EXCHANGE)) {
        this.emit({ type: 'diagnostic', message: `The IdP ${issuer} does not list token exchange in grant_types_supported; trying anyway.`, durationMs: 0 });
      }
      return {
        issuer: meta.issuer,
        tokenEndpoint: meta.token_endpoint,
        authMethods: meta.token_endpoint_auth_methods_supported,
        signingAlgs: meta.token_endpoint_auth_signing_alg_values_supported,
        ...(meta.authorization_grant_profiles_supported?.includes(ID_JAG_PROFILE) === false ? { withoutIdJagProfile: true as const } : {}),
      };
    }, isServerMetadata);
  }
}

const optionalStrings = (value: unknown) => value === undefined || (Array.isArray(value) && value.every((s) => typeof s === 'string'));

/** The shape of a validated {@link ProtectedResourceMetadata}, as another process kept it. */
export function isProtectedResourceMetadata(value: unknown): value is ProtectedResourceMetadata {
  const v = value as Partial<ProtectedResourceMetadata> | null;
  return typeof v === 'object' && v !== null && typeof v.resource === 'string' && typeof v.url === 'string' && Array.isArray(v.authorizationServers) && v.authorizationServers.length > 0 && v.authorizationServers.every((s) => typeof s === 'string') && optionalStrings(v.scopesSupported);
}

/** The shape of a validated {@link ServerMetadata}, as another process kept it. */
function isServerMetadata(value: unknown): value is ServerMetadata {
  const v = value as Partial<ServerMetadata> | null;
  return typeof v === 'object' && v !== null && typeof v.issuer === 'string' && typeof v.tokenEndpoint === 'string' && optionalStrings(v.authMethods) && optionalStrings(v.signingAlgs) && (v.withoutIdJagProfile === undefined || v.withoutIdJagProfile === true);
}

/**
 * RFC 7523: neither an ID-JAG nor a workload's assertion can go to a server that takes no jwt-bearer
 * grant. A listed ID-JAG profile says it does (draft-ietf-oauth-identity-assertion-authz-grant-04 §7.2).
 */
function checkProfile(meta: z.infer<typeof serverSchema>, issuer: string): void {
  const profiles = meta.authorization_grant_profiles_supported;
  const grants = meta.grant_types_supported;
  if (profiles?.includes(ID_JAG_PROFILE) || !grants || grants.includes(JWT_BEARER)) return;
  throw new CrossAppAccessError(`The authorization server ${issuer} does not support the ID-JAG profile nor the jwt-bearer grant (grant_types_supported lacks it).`, {
    code: 'unsupported_profile',
    stage: 'discovery',
  });
}

/**
 * draft-ietf-oauth-identity-assertion-authz-grant-04 §7.2: an ID-JAG goes only to a server whose
 * grant profiles, when it lists them, include the ID-JAG profile. Not asked of a workload's grant
 * (SEP-1933), which is a plain RFC 7523 jwt-bearer grant.
 *
 * @example
 * requireIdJagProfile(await discovery.serverMetadata(issuer, 'authorization_server'));
 */
export function requireIdJagProfile(meta: ServerMetadata): void {
  if (!meta.withoutIdJagProfile) return;
  throw new CrossAppAccessError(`The authorization server ${meta.issuer} does not support the ID-JAG profile (authorization_grant_profiles_supported lacks it).`, {
    code: 'unsupported_profile',
    stage: 'discovery',
  });
}

function invalidMetadata(what: string, url: string, error: z.ZodError): CrossAppAccessError {
  const issue = error.issues[0];
  const member = issue?.path.join('.') || 'document';
  return new CrossAppAccessError(`${capitalize(what)} at ${url} is invalid: ${member}: ${issue?.message ?? 'invalid'}.`, {
    code: 'invalid_metadata',
    stage: 'discovery',
  });
}

/**
 * RFC 9728 §3.3: the document must describe the server it came from (or the configured resource);
 * throws `resource_mismatch`. Exported for `cross-app-access doctor`, which applies the same rule.
 *
 * @example
 * checkResource(prm.resource, new URL('https://mcp.example.com/mcp'), undefined, prmUrl);
 */
export function checkResource(resource: string, target: URL, configured: string | undefined, from: string): void {
  if (configured !== undefined) {
    if (resource !== configured) {
      throw new CrossAppAccessError(
        `The protected-resource metadata at ${from} names resource "${resource}", not the configured "${configured}".`,
        { code: 'resource_mismatch', stage: 'discovery' },
      );
    }
    return;
  }
  const resourceUrl = parseUrl(resource);
  if (!resourceUrl || !isWithinResource(target, resourceUrl)) {
    throw new CrossAppAccessError(
      `The protected-resource metadata at ${from} names resource "${resource}", which does not cover ${target.origin}${target.pathname}; it was not used.`,
      { code: 'resource_mismatch', stage: 'discovery' },
    );
  }
  requireSecureUrl(resource, 'The protected resource', 'discovery');
}

/** RFC 9728 §3.1, §5.1: challenge URL (if absolute and secure), path-aware well-known, root well-known. */
export function protectedResourceUrls(target: URL, challengeUrl: string | undefined): string[] {
  const urls: string[] = [];
  const fromChallenge = challengeUrl === undefined ? undefined : parseUrl(challengeUrl);
  if (fromChallenge) {
    try {
      requireSecureUrl(fromChallenge.href, 'resource_metadata', 'discovery');
      urls.push(fromChallenge.href);
    } catch {
      // Ignored: fall back to the well-known URLs.
    }
  }
  const base = `${target.origin}/.well-known/oauth-protected-resource`;
  if (target.pathname !== '/' && target.pathname !== '') urls.push(`${base}${target.pathname}${target.search}`);
  urls.push(base);
  return [...new Set(urls)];
}

/** RFC 8414 §3.1, §5; OpenID Connect Discovery §4: issuer path inserted after the well-known prefix first. */
/**
 * The same URLs for an IdP, OpenID Discovery's first (OpenID Connect Discovery §4: the issuer's own
 * `/.well-known/openid-configuration`): the IdP issued an ID token, so it is an OpenID Provider, and
 * most serve only that document; trying RFC 8414's first would cost a 404 on every cold start.
 */
export function idpMetadataUrls(issuer: URL): string[] {
  const urls = serverMetadataUrls(issuer);
  const oidc = urls.filter((u) => u.includes('/openid-configuration'));
  // Issuer path appended (OIDC's own form) before inserted (RFC 8414's form applied to OIDC).
  oidc.sort((a, b) => Number(b.endsWith('/openid-configuration')) - Number(a.endsWith('/openid-configuration')));
  return [...oidc, ...urls.filter((u) => !oidc.includes(u))];
}

export function serverMetadataUrls(issuer: URL): string[] {
  const path = issuer.pathname.replace(/\/+$/, '');
  if (path === '') {
    return [`${issuer.origin}/.well-known/oauth-authorization-server`, `${issuer.origin}/.well-known/openid-configuration`];
  }
  return [
    `${issuer.origin}/.well-known/oauth-authorization-server${path}`,
    `${issuer.origin}/.well-known/openid-configuration${path}`,
    `${issuer.origin}${path}/.well-known/openid-configuration`,
  ];
}
