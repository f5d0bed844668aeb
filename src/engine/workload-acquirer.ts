import type { CrossAppAccessError } from '../errors.js';
import { isTransient, retryEvents, withRetry } from '../oauth/retry.js';
import { fingerprint } from '../oauth/jwt.js';
import { workloadGrantRefused } from '../oauth/workload-errors.js';
import type { WorkloadAssertionReason } from '../options/workload-types.js';
import { Acquirer } from './acquirer.js';
import type { ResourceBinding } from './binding.js';
import type { IdTokenSupplier } from './id-token.js';
import type { Liveness } from './liveness.js';
import type { AccessToken } from './tokens.js';
import { checkWorkload, readAssertion, workloadPartition, type PlatformAssertion } from './workload-assertion.js';

/** How long an assertion read to learn the workload may wait for the acquisition it was read for. */
const PRE_READ_MAX_AGE_MS = 60_000;

/**
 * Workload identity (SEP-1933): one acquisition is the workload's platform JWT, sent as the RFC 7523
 * jwt-bearer assertion to the MCP server's authorization server; no IdP, no ID-JAG. The engine's
 * caching, single-flight, renewal and 401 handling are the user flow's. The workload (the JWT's
 * `iss` and `sub`) takes the place of the user's IdP in every token key.
 */
export class WorkloadAcquirer extends Acquirer {
  /** The assertion read to learn the workload, kept for the acquisition that follows (for its audience). */
  private keptAssertion: { readonly assertion: PlatformAssertion; readonly audience: string; readonly resource: string; readonly at: number } | undefined;

  /** A workload's grant is a plain RFC 7523 jwt-bearer grant: no ID-JAG profile needed (SEP-1933). */
  protected override requireGrantProfile(): void {}

  /** No IdP to discover. */
  override prefetchIdp(): void {}

  /**
   * Learns which workload this user key serves by reading its assertion for `binding`'s
   * authorization server (once, shared by the key's concurrent requests).
   */
  override bindIdp(_source: IdTokenSupplier, binding?: ResourceBinding): Promise<void> {
    if (this.user.idp) return Promise.resolve();
    if (!binding) return Promise.reject(new Error('cross-app-access: internal error: a workload bound without a resource'));
    const bound = (this.user.idpBinding ??= this.readAndBind(binding).finally(() => {
      if (this.user.idpBinding === bound) this.user.idpBinding = undefined;
    }));
    return bound;
  }

  private async readAndBind(binding: ResourceBinding): Promise<void> {
    const assertion = await this.read(binding.as.issuer, binding.resource, this.reason());
    this.user.idp ??= workloadPartition(assertion);
    this.keptAssertion = { assertion, audience: binding.as.issuer, resource: binding.resource, at: this.now() };
  }

  /** The workload's assertion for `audience` and `resource`, checked to name the workload this key serves. */
  private async read(audience: string, resource: string, reason: WorkloadAssertionReason): Promise<PlatformAssertion> {
    const assertion = await readAssertion({ source: this.options.assertion!, timeoutMs: this.options.timeoutMs, now: this.now, user: this.user }, audience, resource, reason);
    checkWorkload(this.user, assertion);
    return assertion;
  }

  private reason(): WorkloadAssertionReason {
    return this.user.acquiredBefore ? 'renewal' : 'initial';
  }

  /** The assertion {@link bindIdp} read, once, while it is fresh and for this same audience and resource. */
  private freshKeptAssertion(audience: string, resource: string): PlatformAssertion | undefined {
    const kept = this.keptAssertion;
    this.keptAssertion = undefined;
    if (!kept || kept.audience !== audience || kept.resource !== resource || this.now() - kept.at > PRE_READ_MAX_AGE_MS) return undefined;
    return kept.assertion;
  }

  /**
   * One acquisition: the assertion, then the jwt-bearer grant with the client authentication the
   * server's metadata allows (`none` included). Transient failures (network, 5xx, 429) are retried;
   * `invalid_grant`, `invalid_scope` and `unauthorized_client` are typed errors, never retried and
   * never followed by another grant type (SEP-1933).
   */
  override async acquire(
    binding: ResourceBinding,
    _source: IdTokenSupplier,
    { requiredScopes = [], background = false, liveness }: { requiredScopes?: readonly string[]; background?: boolean; liveness?: Liveness } = {},
  ): Promise<AccessToken> {
    const started = this.now();
    const client = this.registrations.for(binding.as.issuer, this.user.idp!, binding.resource);
    const as = await this.authorizationServer(binding, client);
    // RFC 7523 §3: the assertion's audience is the authorization server, named by its issuer.
    const audience = as.meta.issuer;
    let assertion = this.freshKeptAssertion(audience, binding.resource) ?? (await this.read(audience, binding.resource, this.reason()));
    // A JWT the server refused (invalid_grant) is not sent again, by this request or a later one: the
    // same refusal would come back. The source is asked once for a fresh one (`'expired'`); a
    // different JWT is sent, the same one is not (as with the user flow's ID token).
    let print = await fingerprint(assertion.token);
    const refused = this.user.refusedSubject;
    if (refused?.fingerprint === print) {
      assertion = await this.read(audience, binding.resource, 'expired');
      print = await fingerprint(assertion.token);
      if (refused.fingerprint === print) throw refused.error;
    }
    const scope = binding.scopes?.join(' ');
    const granted = await withRetry(
      async () => {
        try {
          return await this.grant(binding, client, as, { idJag: assertion.token, scope: undefined, expiresIn: undefined }, scope, requiredScopes);
        } catch (error) {
          const typed = workloadGrantRefused(error);
          if (typed?.code === 'assertion_rejected') this.user.refusedSubject = { fingerprint: print, error: typed };
          throw typed ?? error;
        }
      },
      this.options.retry,
      retryEvents(this.emit),
      (error): error is CrossAppAccessError => isTransient(error) && error.stage === 'jwt_bearer',
      liveness && ((ms) => liveness.sleep(ms)),
    );
    return this.issued(binding, granted, background, started);
  }
}
