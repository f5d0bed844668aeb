import type { LRUCache } from 'lru-cache';
import { LazyLru } from '../lazy-lru.js';
import type { ResourceBinding } from './binding.js';
import { AS_AUTH_PREFERENCE, chooseClientAuth } from '../oauth/client-auth.js';
import { requireIdJagProfile, type Discovery, type ProtectedResourceMetadata } from '../oauth/discovery.js';
import { CrossAppAccessError } from '../errors.js';
import { normaliseScopes } from '../options/resolve.js';
import type { ConfiguredResource, ResolvedIdp, ResolvedOptions } from '../options/types.js';
import { Registrations } from './registrations.js';
import { isInside, requireSecureUrl, resourceBoundary } from '../url-rules.js';
import { DEFAULTS } from '../options/defaults.js';

/**
 * The protected resources this engine has learned, each bound to its authorization server, and the
 * client's registrations there (see {@link Registrations}).
 */
export class ResourceRegistry {
  /** By resource, least recently used dropped first, so a wrapper around global fetch stays bounded. */
  private readonly learned = new LazyLru<string, ResourceBinding>({
    max: MAX_LEARNED_RESOURCES,
    dispose: (binding) => {
      this.version++;
      const key = boundaryKey(binding.boundary.origin, binding.boundary.prefix);
      if (this.byBoundary.get(key) === binding) this.byBoundary.delete(key);
    },
  });
  private get bindings(): LRUCache<string, ResourceBinding> {
    return this.learned.cache;
  }
  /** The same bindings by origin and path prefix: a lookup costs one probe per path segment, whatever their number. */
  private readonly byBoundary = new Map<string, ResourceBinding>();
  private readonly pending = new Map<string, Promise<ResourceBinding>>();
  /** Bumped whenever a resource is learned or forgotten: a kept {@link findFor} answer is then stale. */
  private version = 0;
  private lastFound: { readonly target: object; readonly version: number; readonly binding: ResourceBinding | undefined } | undefined;
  /** This client's registrations: which one serves which authorization server (and IdP). */
  readonly registrations: Registrations;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly discovery: Discovery,
    /** The DPoP key's name, when tokens are bound to one: tokens of another key live elsewhere. */
    private readonly dpopCacheId?: string,
  ) {
    this.registrations = new Registrations(options.clients);
  }

  /**
   * The cache partition of `binding`'s tokens for the users of `idp`: the IdP and this client's id
   * there, the registration serving them at the authorization server, and the binding's own key.
   * Built once per (binding, IdP): the warm path only looks it up.
   */
  partition(binding: ResourceBinding, idp: ResolvedIdp): string {
    let partition = binding.partitions.get(idp);
    if (partition === undefined) {
      const client = this.registrations.for(binding.as.issuer, idp, binding.resource);
      const registration = [idp.partition, client.issuer ?? '', client.clientId, ...(this.dpopCacheId === undefined ? [] : [this.dpopCacheId])];
      partition = `${JSON.stringify(registration)}\u0000${binding.key}`;
      binding.partitions.set(idp, partition);
    }
    return partition;
  }

  /**
   * {@link find} for a target the adapters reuse (MCP transports send to one URL again and again):
   * the last answer is kept with the target object it was for, until the learned resources change.
   */
  findFor(target: { readonly origin: string; readonly path: string }): ResourceBinding | undefined {
    const last = this.lastFound;
    if (last !== undefined && last.target === target && last.version === this.version) {
      if (last.binding) this.bindings.get(last.binding.resource); // marks it recently used
      return last.binding;
    }
    const binding = this.find(target.origin, target.path);
    this.lastFound = { target, version: this.version, binding };
    return binding;
  }

  /** The most specific learned resource that covers the target's origin and path, if any (RFC 8707 §2). */
  find(origin: string, path: string): ResourceBinding | undefined {
    // From the whole path up to the root, one `/`-bounded prefix at a time: the first hit is the
    // most specific resource.
    let candidate = path;
    while (true) {
      const binding = this.byBoundary.get(boundaryKey(origin, candidate));
      if (binding && isInside(origin, path, binding.boundary)) {
        this.bindings.get(binding.resource); // marks it recently used
        return binding;
      }
      if (candidate === '') return undefined;
      const cut = candidate.lastIndexOf('/');
      candidate = cut <= 0 ? '' : candidate.slice(0, cut);
    }
  }

  /** Resources learned (for tests of the bound). */
  get size(): number {
    return this.bindings.size;
  }

  private store(binding: ResourceBinding): void {
    this.version++;
    this.bindings.set(binding.resource, binding);
    this.byBoundary.set(boundaryKey(binding.boundary.origin, binding.boundary.prefix), binding);
  }

  /**
   * A configured resource's binding, from its well-known metadata, or straight from the one
   * registration's `issuer` when there is one registration and it names its issuer (no discovery).
   * Undefined when no metadata is found there, so the caller falls back to the server's 401 challenge.
   */
  async forConfiguredResource(configured: ConfiguredResource): Promise<ResourceBinding | undefined> {
    const { resource, url } = configured;
    const pinned = this.options.clients.length === 1 ? this.options.clients[0]!.issuer : undefined;
    if (pinned !== undefined) {
      // Both pinned: the authorization server's metadata is fetched at once, and the resource's own
      // metadata alongside only for its scopes_supported (RFC 9728 §2), so the requested scope does
      // not change when the issuer is pinned. It is not on the critical path, and may be absent.
      const scopesSupported = this.options.scopes === undefined ? this.configuredScopesSupported(url, resource) : Promise.resolve(undefined);
      return this.fromMetadata({ resource, authorizationServers: [pinned], scopesSupported, url: '' }, undefined);
    }
    try {
      return await this.fromMetadata(await this.discovery.protectedResource(url, undefined, resource), undefined);
    } catch (error) {
      if (error instanceof CrossAppAccessError && error.code === 'metadata_not_found') return undefined;
      throw error;
    }
  }

  /** The binding for a validated PRM; concurrent callers share one. */
  fromMetadata(prm: ProtectedResourceMetadata | PinnedResource, challengeScope: string | undefined): Promise<ResourceBinding> {
    const known = this.bindings.get(prm.resource);
    if (known) return Promise.resolve(known);
    let pending = this.pending.get(prm.resource);
    if (!pending) {
      pending = this.bind(prm, challengeScope).finally(() => this.pending.delete(prm.resource));
      this.pending.set(prm.resource, pending);
    }
    return pending;
  }

  /**
   * The binding for previous ∪ challenged scopes (MCP authorization spec, "Step-Up Authorization
   * Flow"), or undefined when the challenge adds nothing. `newest` is the user's own stepped-up
   * binding, when another of their requests stepped up already: both are built on, never losing a
   * scope either had. `grantedScope` stands in for the previous scopes when none were requested, so
   * the server's default scopes are not dropped. Nothing shared changes: a step-up is the user's.
   */
  stepUp(binding: ResourceBinding, newest: ResourceBinding | undefined, challengedScope: string, grantedScope: string | undefined): ResourceBinding | undefined {
    const challenged = learnedScopes(challengedScope) ?? [];
    const base = newest ?? binding;
    const previous = [...(base.scopes ?? []), ...(binding.scopes ?? learnedScopes(grantedScope) ?? [])];
    const union = normaliseScopes([...previous, ...challenged]) ?? [];
    if (union.length === (base.scopes?.length ?? 0) && union.every((s) => base.scopes?.includes(s))) {
      return base === binding ? undefined : base;
    }
    return { ...base, scopes: union, key: bindingKey(base.as.issuer, base.resource, union), partitions: new Map() };
  }

  /**
   * A 401 pointed from `stale` to `fresh`. When `stale` lies within `fresh` (the
   * server's resource became less specific, or changed), `stale` no longer describes those URLs and
   * is forgotten, so its token is not sent again; a broader `stale` (nested resources) stays.
   * Returns whether `stale` was forgotten.
   */
  forgetIfSuperseded(stale: ResourceBinding, fresh: ResourceBinding): boolean {
    if (stale.resource === fresh.resource || !isInside(stale.boundary.origin, stale.resourceUrl.pathname, fresh.boundary)) return false;
    // Whichever binding of that resource is known (a user's stepped-up one is not the shared object).
    this.bindings.delete(stale.resource);
    return true;
  }

  /** The configured resource's `scopes_supported`, or undefined when its metadata cannot be read. */
  private async configuredScopesSupported(resourceUrl: URL, resource: string): Promise<string[] | undefined> {
    try {
      return (await this.discovery.protectedResource(resourceUrl, undefined, resource)).scopesSupported;
    } catch {
      return undefined;
    }
  }

  private async bind(prm: ProtectedResourceMetadata | PinnedResource, challengeScope: string | undefined): Promise<ResourceBinding> {
    const issuer = this.chooseIssuer(prm);
    const [as, scopesSupported] = await Promise.all([this.discovery.serverMetadata(issuer, 'authorization_server'), prm.scopesSupported]);
    // A resource whose server takes no ID-JAG is not one the user flow can serve (its 401 goes back).
    if (this.options.assertion === undefined) requireIdJagProfile(as);
    // Bind on first use (this package's rule) only once the AS metadata has validated, to its
    // metadata issuer: credentials stay with one issuer (MCP authorization 2026-07-28, "Authorization Server Binding").
    this.registrations.bind(as.issuer);
    const registered = this.registrations.at(as.issuer);
    if (registered.length === 0) throw this.notAllowed(prm);
    // Each registration's method is chosen per acquisition; one the server cannot take is a
    // configuration error now, before any ID token is read.
    for (const client of registered) chooseClientAuth(client, as.authMethods, AS_AUTH_PREFERENCE, `The authorization server ${as.issuer}`, 'discovery');
    // Scope: configured, else the challenge's, else everything the PRM lists (MCP authorization spec,
    // "Scope Selection Strategy"), never
    // adding openid or offline_access ourselves (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.4.3).
    const scopes = this.options.scopes ?? learnedScopes(challengeScope) ?? learnedScopes(scopesSupported);
    const resourceUrl = requireSecureUrl(prm.resource, 'The protected resource', 'discovery');
    const binding: ResourceBinding = {
      resource: prm.resource,
      resourceUrl,
      boundary: resourceBoundary(resourceUrl),
      metadataUrl: prm.url,
      as,
      scopes,
      key: bindingKey(as.issuer, prm.resource, scopes),
      partitions: new Map(),
    };
    this.store(binding);
    return binding;
  }

  /** RFC 9728 §7.6: the client chooses, among the authorization servers it is registered at. */
  private chooseIssuer(prm: ProtectedResourceMetadata | PinnedResource): string {
    const chosen = this.registrations.choose(prm.authorizationServers);
    if (chosen === undefined) throw this.notAllowed(prm);
    requireSecureUrl(chosen, `The authorization server ${chosen}`, 'discovery');
    return chosen;
  }

  private notAllowed(prm: ProtectedResourceMetadata | PinnedResource): CrossAppAccessError {
    return new CrossAppAccessError(
      `The resource ${prm.resource} is guarded by ${prm.authorizationServers.join(', ')}, but this client is registered at ${this.registrations.describe()}; nothing was sent there. Add a client registration for that authorization server (client: [...]).`,
      { code: 'issuer_not_allowed', stage: 'discovery' },
    );
  }
}

/** A configured `resource` with a pinned `client.issuer`: its scopes may still be on their way. */
interface PinnedResource extends Omit<ProtectedResourceMetadata, 'scopesSupported'> {
  scopesSupported: Promise<string[] | undefined>;
}

/** Resources a wrapper keeps learned; the least recently used beyond this are learned again when met. */
export const MAX_LEARNED_RESOURCES = DEFAULTS.maxLearnedResources;

function boundaryKey(origin: string, prefix: string): string {
  return `${origin}\u0000${prefix}`;
}

/**
 * A resource's tokens at one authorization server: its issuer, the resource (verbatim) and the
 * normalised scope set. The IdP and the registration are added per user ({@link ResourceRegistry.partition}),
 * the user per token.
 */
function bindingKey(asIssuer: string, resource: string, scopes: readonly string[] | undefined): string {
  return JSON.stringify([asIssuer, resource, scopes?.join(' ') ?? '']);
}

const NEVER_LEARNED = new Set(['openid', 'offline_access']);

function learnedScopes(scope: string | readonly string[] | undefined): string[] | undefined {
  const scopes = normaliseScopes(scope)?.filter((s) => !NEVER_LEARNED.has(s));
  return scopes && scopes.length > 0 ? scopes : undefined;
}
