import { untilAborted } from '../abort.js';
import { CrossAppAccessError } from '../errors.js';
import type { CrossAppAccessEvent } from '../events.js';
import { bearerChallenge } from '../oauth/challenge.js';
import type { Discovery } from '../oauth/discovery.js';
import type { ConfiguredResource, ResolvedOptions } from '../options/types.js';
import { describeUrl, parseUrl, respelledLoopback } from '../url-rules.js';
import type { ResourceBinding } from './binding.js';
import type { Answer, Session, Target } from './engine.js';
import type { FleetResources } from './fleet-resources.js';
import type { ResourceRegistry } from './resources.js';
import { DEFAULTS } from '../options/defaults.js';

// Distinct URLs outside the configured resources reported once each, at most.
const MAX_OUTSIDE_REPORTS = DEFAULTS.maxOutsideReports;

/**
 * What answers from MCP servers teach the engine: a 401's Bearer challenge names the server's
 * protected-resource metadata (RFC 9728 §5.1), learned once and kept in the registry; a challenge
 * naming other metadata moves a URL to another resource; a 401 outside the configured resources is
 * explained (the usual `localhost` against `127.0.0.1`).
 */
export class ResourceLearning {
  private readonly outsideReported = new Set<string>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly discovery: Discovery,
    private readonly registry: ResourceRegistry,
    private readonly emit: (event: CrossAppAccessEvent) => void,
    /** The configured resource covering a target, if any (the engine's). */
    private readonly configuredFor: (target: Target) => ConfiguredResource | undefined,
    /** Where a resource learned here is shared with the fleet, when the store shares discovery results. */
    private readonly fleet?: FleetResources,
  ) {}

  /**
   * An unauthenticated request answered 401 with a Bearer challenge: learn its resource (RFC 9728
   * §5.1). Undefined when there is nothing to learn: no challenge; an answer that came through a
   * redirect (it speaks for wherever the redirect pointed, RFC 9728 §3.3); or, without `resource`, a
   * discovery failure (the server is not known to be ours: its 401 goes back, with the reason).
   */
  async learn(answer: Answer, target: Target, session: Session | undefined, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    const challenge = answer.status === 401 ? bearerChallenge(answer.headers) : undefined;
    if (!challenge) return undefined;
    if (answer.redirected) {
      this.diagnostic(`A request to ${describeUrl(target.url)} was redirected and answered 401 with a Bearer challenge elsewhere; nothing was learned from it and the 401 was returned as it came.`);
      return undefined;
    }
    try {
      const prm = await untilAborted(this.discovery.protectedResource(target.url, challenge.resourceMetadata, this.configuredFor(target)?.resource), signal);
      // It is one of ours: the IdP's metadata can be fetched alongside the authorization server's.
      session?.acquirer.prefetchIdp();
      const binding = await untilAborted(this.registry.fromMetadata(prm, challenge.scope), signal);
      if (this.options.resources.length === 0) this.fleet?.remember(target, prm, challenge.scope);
      return binding;
    } catch (error) {
      if (this.options.resources.length > 0 || signal?.aborted || !(error instanceof CrossAppAccessError) || error.stage !== 'discovery') throw error;
      this.diagnostic(`A request to ${describeUrl(target.url)} was answered 401 with a Bearer challenge, but its authorization could not be discovered (${error.code}: ${error.message}); the 401 was returned as it came.`);
      return undefined;
    }
  }

  /**
   * The resource a 401's challenge points to when it is not `current`'s (RFC 9728 §5.1, discovered
   * again); undefined when it is the same, or when its metadata cannot be used.
   */
  async elsewhere(answer: Answer, current: ResourceBinding, target: Target, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    const challenge = bearerChallenge(answer.headers);
    const url = challenge?.resourceMetadata === undefined ? undefined : parseUrl(challenge.resourceMetadata);
    if (!url || url.href === current.metadataUrl) return undefined;
    try {
      const prm = await untilAborted(this.discovery.protectedResource(target.url, url.href, this.configuredFor(target)?.resource), signal);
      if (prm.resource === current.resource) return undefined;
      return await untilAborted(this.registry.fromMetadata(prm, challenge?.scope), signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      return undefined;
    }
  }

  /**
   * A request outside the configured resource answered 401 with a Bearer challenge: the most common
   * misconfiguration (`localhost` against `127.0.0.1`, a path outside the resource). No token was
   * sent, rightly. When the URL differs from the resource only by its loopback host's spelling, the
   * answer is a typed error naming the URL to call (an opaque 401 hides it); otherwise a diagnostic
   * says why, once per URL, and the 401 goes back as it came.
   */
  noticeOutside(status: number, headers: { get(name: string): string | null }, target: Target): CrossAppAccessError | undefined {
    const resources = this.options.resources;
    if (status !== 401 || resources.length === 0 || !bearerChallenge(headers)) return undefined;
    const where = describeUrl(target.url);
    for (const configured of resources) {
      const respelled = respelledLoopback(target.url, configured.boundary);
      if (!respelled) continue;
      return new CrossAppAccessError(
        `A request to ${where} was answered 401, and no token was sent: the configured resource is ${configured.resource}, which spells the host ${respelled.hostname}. Call ${describeUrl(respelled)} (the URL a token is for), or set resource to the URL the client calls.${isIpLiteral(target.url.hostname) ? ' If the caller did, something rewrote the host on the way (an undici dns interceptor composed after this one): compose it beneath.' : ''}`,
        { code: 'resource_mismatch', stage: 'request', status },
      );
    }
    if (this.outsideReported.size >= MAX_OUTSIDE_REPORTS || this.outsideReported.has(where)) return undefined;
    this.outsideReported.add(where);
    const sameOrigin = resources.find((configured) => configured.boundary.origin === target.origin);
    const why = sameOrigin ? `its path is not at or below ${sameOrigin.boundary.prefix || '/'}` : `its origin is not ${resources.map((r) => r.boundary.origin).join(' nor ')}`;
    const named = resources.map((r) => r.resource).join(', ');
    this.diagnostic(`A request to ${where} was answered 401 with a Bearer challenge, but it is outside the configured resource ${named} (${why}), so no token was sent. Set resource exactly as the client calls the server.`);
    return undefined;
  }

  private diagnostic(message: string): void {
    this.emit({ type: 'diagnostic', message, durationMs: 0 });
  }
}

/** An IPv4 or IPv6 literal host (as `URL` writes it): what a resolver turns a name into. */
function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
}
