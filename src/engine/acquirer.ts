import { AS_AUTH_PREFERENCE, chooseClientAuth, IDP_AUTH_PREFERENCE, type ClientAuthMethod } from '../oauth/client-auth.js';
import { requireIdJagProfile, type Discovery, type ServerMetadata } from '../oauth/discovery.js';
import { CrossAppAccessError, OAuthResponseError } from '../errors.js';
import type { CrossAppAccessEvent } from '../events.js';
import {
  SUBJECT_TOKEN_TYPES,
  exchangeForIdJag,
  exchangeSamlForRefreshToken,
  redeemIdJag,
  type AccessTokenResponse,
  type IdJagResponse,
  type TokenEndpoint,
} from '../oauth/grants.js';
import type { FetchLike } from '../oauth/http.js';
import { checkIdJag } from '../oauth/id-jag-check.js';
import type { Dpop } from '../oauth/dpop/dpop.js';
import { checkIdJagBinding } from '../oauth/dpop/id-jag-binding.js';
import { fingerprint } from '../oauth/jwt.js';
import type { ClientOptions, IdTokenReason, ResolvedIdp, ResolvedOptions } from '../options/types.js';
import type { Registrations } from './registrations.js';
import type { UserState } from './users.js';
import type { Liveness } from './liveness.js';
import { isTransient, retryEvents, withRetry } from '../oauth/retry.js';
import type { AccessToken } from './tokens.js';
import { toAccessToken } from './access-token.js';
import { isExpired, readSubject, type IdTokenSupplier, type Subject } from './id-token.js';
import type { ResourceBinding } from './binding.js';
import {
  autoClientAuthRejected,
  isInsufficientAuthentication,
  isRejectedSubject,
  loginRequired,
  reauthenticationRequired,
  requireScopes,
  suggestsMovedEndpoint,
} from '../oauth/acquisition-errors.js';
import { DEFAULTS } from '../options/defaults.js';

/** How long an ID token read to learn the user's IdP may wait for the acquisition it was read for. */
const PRE_READ_MAX_AGE_MS = DEFAULTS.preReadMaxAgeMs;

/** The authorization server's metadata as this acquisition uses it, and the client authentication chosen for it. */
export interface AuthorizationServerNow {
  readonly meta: ServerMetadata;
  readonly authMethod: ClientAuthMethod;
}

/**
 * One acquisition: ID token → RFC 8693 exchange at the IdP (ID-JAG) → RFC 7523 jwt-bearer at the AS
 * (access token). A fresh ID-JAG for every jwt-bearer request; nothing but the access token is kept.
 */
export class Acquirer {
  /**
   * One per user of an engine. `emit` adds the user to every event; `user` holds what the engine
   * knows of that user (the identity its ID tokens must keep naming).
   */
  constructor(
    protected readonly options: ResolvedOptions,
    protected readonly fetch: FetchLike,
    protected readonly discovery: Discovery,
    protected readonly emit: (event: CrossAppAccessEvent) => void,
    protected readonly now: () => number,
    protected readonly user: UserState,
    protected readonly registrations: Registrations,
    protected readonly dpop?: Dpop,
  ) {}

  /** The ID token read to learn the user's IdP, kept for the acquisition that follows. */
  private preRead: { readonly subject: Subject; readonly at: number } | undefined;

  /**
   * Learns which of the engine's IdPs this user's ID tokens come from, by reading one (once, shared
   * by the user's concurrent requests): the IdP whose `issuer` equals its `iss`. An ID token from any
   * other IdP is refused before it is sent anywhere.
   */
  // `_binding`: the resource the caller is after (workload identity reads its assertion for it).
  bindIdp(source: IdTokenSupplier, _binding?: ResourceBinding): Promise<void> {
    if (this.user.idp) return Promise.resolve();
    const binding = (this.user.idpBinding ??= this.readAndBindIdp(source).finally(() => {
      if (this.user.idpBinding === binding) this.user.idpBinding = undefined;
    }));
    return binding;
  }

  private async readAndBindIdp(source: IdTokenSupplier): Promise<void> {
    // readSubject refuses an ID token from an IdP not listed, before anything is bound or sent.
    const subject = await this.subject(source, this.user.acquiredBefore ? 'renewal' : 'initial');
    this.user.idp ??= this.options.idps.find((candidate) => candidate.issuer === subject.issuer);
    this.preRead = { subject, at: this.now() };
  }

  /**
   * The ID token {@link bindIdp} read, for the acquisition that follows it, once; only while it is
   * fresh: an acquisition that never came (the registration check failed first) leaves one that must
   * not be sent later, past its `exp` or long after the application may have refreshed it.
   */
  private freshPreRead(): Subject | undefined {
    const kept = this.preRead;
    this.preRead = undefined;
    if (!kept || this.now() - kept.at > PRE_READ_MAX_AGE_MS || isExpired(kept.subject.exp, this.now())) return undefined;
    return kept.subject;
  }

  /** The user's IdP: bound by {@link bindIdp} before any acquisition. */
  private get idp(): ResolvedIdp {
    const idp = this.user.idp;
    if (!idp) throw new Error('cross-app-access: internal error: an acquisition started before the user\'s IdP was known');
    return idp;
  }

  /**
   * One acquisition for `binding`. `requiredScopes` (a step-up's challenged scopes) must all be
   * granted, else it fails with `insufficient_scope` rather than loop. `background`
   * marks a renewal ahead of expiry (reported as `token_renewed`). `liveness` says whether its retry
   * waits hold the process: while a caller waits on it.
   */
  async acquire(
    binding: ResourceBinding,
    source: IdTokenSupplier,
    { requiredScopes = [], background = false, liveness }: { requiredScopes?: readonly string[]; background?: boolean; liveness?: Liveness } = {},
  ): Promise<AccessToken> {
    const started = this.now();
    const client = this.registrations.for(binding.as.issuer, this.idp, binding.resource);
    const preRead = this.freshPreRead();
    // The IdP's and the AS's metadata and the app's ID token are independent: read them at once. The
    // DPoP key too: a key that cannot sign fails the acquisition before the ID token leaves.
    const [idp, as, firstSubject] = await Promise.all([
      this.idpEndpoint(),
      this.authorizationServer(binding, client),
      preRead ?? this.subject(source, this.user.acquiredBefore ? 'renewal' : 'initial'),
      this.dpop?.key(),
    ]);
    let subject = firstSubject;
    const scope = binding.scopes?.join(' ');
    // Once per acquisition, however often the loop below runs.
    const once = { idTokenRefreshed: false, reauthenticated: false, grantRepeated: false };
    // One retry loop for the whole acquisition: a transient failure of either leg runs both again,
    // so every grant attempt has a new ID-JAG (MCP Enterprise-Managed Authorization (stable) §7.4.2), and retries never
    // multiply across layers.
    const granted = await withRetry(
      async () => {
        const first = await this.idJag(idp, binding, client, source, subject, scope, requiredScopes, once);
        subject = first.subject;
        try {
          return await this.grant(binding, client, as, first.jag, scope, requiredScopes);
        } catch (error) {
          // The AS refused the ID-JAG (expired, replayed, a claim mismatch): both legs once more, with
          // a new ID-JAG, since a spent one is never re-sent (MCP Enterprise-Managed Authorization (stable) §7.4.2).
          const refused = error instanceof OAuthResponseError && error.stage === 'jwt_bearer' && error.error === 'invalid_grant';
          if (!refused || once.grantRepeated) throw error;
          once.grantRepeated = true;
          const second = await this.idJag(idp, binding, client, source, subject, scope, requiredScopes, once);
          subject = second.subject;
          return this.grant(binding, client, as, second.jag, scope, requiredScopes);
        }
      },
      this.options.retry,
      retryEvents(this.emit),
      (error): error is CrossAppAccessError => isTransient(error) && (error.stage === 'token_exchange' || error.stage === 'jwt_bearer'),
      // Its waits hold the process only while a caller waits on this acquisition (see Liveness).
      liveness && ((ms) => liveness.sleep(ms)),
    );

    return this.issued(binding, granted, background, started);
  }

  /** The access token as it is kept, reported as issued (or renewed, in the `background`). */
  protected async issued(binding: ResourceBinding, granted: AccessTokenResponse, background: boolean, started: number): Promise<AccessToken> {
    // RFC 9449 §6: a DPoP-bound token is kept with the thumbprint of the key it is bound to.
    const jkt = granted.tokenType === 'DPoP' ? (await this.dpop?.key())?.jkt : undefined;
    const token = await toAccessToken(granted.accessToken, granted.expiresIn, granted.scope, this.options, this.now, jkt);
    this.user.acquiredBefore = true;
    this.emit({
      type: background ? 'token_renewed' : 'token_issued',
      issuer: binding.as.issuer,
      resource: binding.resource,
      scope: token.scope,
      expiresIn: Math.round((token.expiresAt - token.receivedAt) / 1000),
      fingerprint: token.fingerprint,
      durationMs: this.now() - started,
    });
    return token;
  }

  /**
   * Leg 1, asking the app once for a new ID token if the IdP rejects this one (`invalid_grant`,
   * RFC 6749 §5.2), and once for a fresh authentication if the IdP finds the user's sign-in too old
   * (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3).
   */
  private async idJag(
    idp: TokenEndpoint,
    binding: ResourceBinding,
    client: Readonly<ClientOptions>,
    source: IdTokenSupplier,
    subject: Subject,
    scope: string | undefined,
    required: readonly string[],
    once: { idTokenRefreshed: boolean; reauthenticated: boolean },
  ): Promise<{ jag: IdJagResponse; subject: Subject }> {
    let jag: IdJagResponse | undefined;
    while (!jag) {
      try {
        jag = await this.exchangeUnlessRefused(idp, binding, subject.token, scope);
      } catch (error) {
        if (isRejectedSubject(error)) {
          if (source.isStatic || once.idTokenRefreshed) throw loginRequired(error);
          once.idTokenRefreshed = true;
          subject = await this.subject(source, 'rejected');
        } else if (isInsufficientAuthentication(error)) {
          // A string idToken cannot be signed in again: the application has to (draft-ietf-oauth-identity-assertion-authz-grant-04 §4.3).
          if (source.isStatic || once.reauthenticated) throw reauthenticationRequired(error);
          once.reauthenticated = true;
          subject = await this.subject(source, 'reauthenticate', error.maxAge);
        } else {
          throw error;
        }
      }
    }
    if (idp.dpop) checkIdJagBinding(jag.idJag, (await idp.dpop.key()).jkt, this.emit);
    if (this.options.checkIdJag) {
      checkIdJag(jag.idJag, { issuer: binding.as.issuer, clientId: client.clientId, resource: binding.resource, nowMs: this.now() }, this.emit);
    }
    requireScopes(jag.scope, required, 'The IdP', 'token_exchange');
    return { jag, subject };
  }

  /**
   * Leg 2 asks for what leg 1 granted, or what it requested when the IdP did not say (RFC 8693 §2.2.1;
   * MCP Enterprise-Managed Authorization (stable) §7.2.1).
   */
  protected async grant(
    binding: ResourceBinding,
    client: Readonly<ClientOptions>,
    as: AuthorizationServerNow,
    jag: IdJagResponse,
    requested: string | undefined,
    required: readonly string[],
  ): Promise<AccessTokenResponse & { scope: string | undefined }> {
    const scope = jag.scope ?? requested;
    const started = this.now();
    const { meta } = as;
    let granted: AccessTokenResponse;
    try {
      granted = await redeemIdJag(
        // A client assertion's audience is the AS's issuer (RFC 7523 §3).
        { ...this.endpoint(meta.tokenEndpoint, client, as.authMethod, 'client', meta.issuer, meta.signingAlgs), dpop: this.dpop },
        { assertion: jag.idJag, resource: binding.resource, scope },
      );
    } catch (error) {
      // The endpoint may have moved: the next acquisition reads the AS metadata again (RFC 8414 §3).
      if (suggestsMovedEndpoint(error)) this.discovery.forget(meta.issuer, 'authorization_server');
      // An automatically chosen method refused: say which, and how to choose another. No second try
      // with the next method: invalid_client is as often a wrong id or secret, the secret would be
      // sent again in another form, a fresh ID-JAG would be spent, and the mismatch is a fixed
      // registration fact that one option settles for good.
      throw autoClientAuthRejected(error, as.authMethod, meta.authMethods, client) ?? error;
    }
    this.emit({ type: 'jwt_bearer', tokenEndpoint: meta.tokenEndpoint, resource: binding.resource, scope, durationMs: this.now() - started });
    // RFC 9449 §5: a server may issue a Bearer token despite the proof; it is then used as Bearer.
    if (this.dpop && granted.tokenType === 'Bearer') this.emit({ type: 'diagnostic', message: `The authorization server ${meta.issuer} issued a Bearer token despite the DPoP proof; it is sent as Bearer.`, durationMs: 0 });
    requireScopes(granted.scope, required, 'The authorization server', 'jwt_bearer');
    return { ...granted, scope: granted.scope ?? scope };
  }

  protected endpoint(
    url: string,
    credentials: TokenEndpoint['credentials'],
    method: ClientAuthMethod,
    option: 'idp' | 'client',
    audience: string,
    supportedAlgs: readonly string[] | undefined,
  ): TokenEndpoint {
    return {
      fetch: this.fetch,
      url,
      credentials,
      method,
      timeoutMs: this.options.timeoutMs,
      assertion: { audience, supportedAlgs, now: this.now, option },
      holds: this.discovery.holds,
    };
  }

  /**
   * Leg 1, unless the IdP already refused this very subject token (`invalid_grant`, RFC 6749 §5.2):
   * it is not sent again, so a user whose sign-in the IdP ended costs the IdP nothing per request
   * until the application supplies another one. The refusal is remembered by fingerprint, per user.
   */
  private async exchangeUnlessRefused(idp: TokenEndpoint, binding: ResourceBinding, subjectToken: string, scope: string | undefined): Promise<IdJagResponse> {
    const print = await fingerprint(subjectToken);
    const refused = this.user.refusedSubject;
    if (refused?.fingerprint === print) throw refused.error;
    try {
      return await this.exchange(idp, binding, subjectToken, scope);
    } catch (error) {
      if (isRejectedSubject(error)) this.user.refusedSubject = { fingerprint: print, error };
      throw error;
    }
  }

  private async exchange(idp: TokenEndpoint, binding: ResourceBinding, subjectToken: string, scope: string | undefined): Promise<IdJagResponse> {
    const started = this.now();
    let subject = subjectToken;
    let subjectTokenType = SUBJECT_TOKEN_TYPES[this.options.subjectTokenType];
    if (this.options.subjectTokenType === 'saml2') {
      // draft-ietf-oauth-identity-assertion-authz-grant-04 §4.5: the SAML assertion buys an IdP refresh token, used once as the ID-JAG exchange's subject.
      subject = await exchangeSamlForRefreshToken(idp, subjectToken);
      subjectTokenType = SUBJECT_TOKEN_TYPES.refresh_token;
    }
    const jag = await exchangeForIdJag(idp, { subjectToken: subject, subjectTokenType, audience: binding.as.issuer, resource: binding.resource, scope }, this.emit);
    this.emit({ type: 'token_exchange', tokenEndpoint: idp.url, audience: binding.as.issuer, resource: binding.resource, scope, durationMs: this.now() - started });
    return jag;
  }

  /**
   * The AS metadata through the discovery cache (an hour, single-flight, so normally no request),
   * not the copy the binding captured: an AS may move its token endpoint or change its methods
   * (RFC 8414 §3). If it cannot be read for a transient reason, the captured copy is used.
   */
  protected async authorizationServer(binding: ResourceBinding, client: Readonly<ClientOptions>): Promise<AuthorizationServerNow> {
    let meta: ServerMetadata;
    try {
      meta = await this.discovery.serverMetadata(binding.as.issuer, 'authorization_server');
    } catch (error) {
      if (!isTransient(error)) throw error;
      this.emit({ type: 'diagnostic', message: `The metadata of the authorization server ${binding.as.issuer} could not be read again (${error.code}); the copy read earlier is used.`, durationMs: 0 });
      meta = binding.as;
    }
    this.requireGrantProfile(meta);
    const authMethod = chooseClientAuth(client, meta.authMethods, AS_AUTH_PREFERENCE, `The authorization server ${meta.issuer}`, 'discovery');
    return { meta, authMethod };
  }

  /** What this acquirer's grant asks of the server: the ID-JAG profile (checked on every use, as the metadata may come from another kind of engine). */
  protected requireGrantProfile(meta: ServerMetadata): void {
    requireIdJagProfile(meta);
  }

  /**
   * Starts IdP discovery early (cached, single-flight), so it runs alongside the MCP server's and the
   * authorization server's; its failure is reported by the acquisition that needs it.
   */
  prefetchIdp(): void {
    const idp = this.user.idp ?? (this.options.idps.length === 1 ? this.options.idps[0] : undefined);
    if (idp?.tokenEndpoint === undefined && idp?.issuer !== undefined) this.discovery.serverMetadata(idp.issuer, 'idp').catch(() => undefined);
  }

  /** The IdP token endpoint: configured, or discovered from the issuer once and cached (draft-ietf-oauth-identity-assertion-authz-grant-04 §7.1). */
  private async idpEndpoint(): Promise<TokenEndpoint> {
    const idp = this.idp;
    let url = idp.tokenEndpoint;
    let supported: string[] | undefined;
    let algs: string[] | undefined;
    if (url === undefined) {
      const meta = await this.discovery.serverMetadata(idp.issuer ?? '', 'idp');
      url = meta.tokenEndpoint;
      supported = meta.authMethods;
      algs = meta.signingAlgs;
    }
    const method = chooseClientAuth(idp, supported, IDP_AUTH_PREFERENCE, 'The IdP', 'token_exchange');
    // A client assertion's audience is the IdP's issuer, or its token endpoint when no issuer is set.
    const endpoint = this.endpoint(url, idp, method, 'idp', idp.issuer ?? url, algs);
    // draft-ietf-oauth-identity-assertion-authz-grant-04 §8.6: a proof here asks the IdP to bind the ID-JAG to the key.
    return this.dpop?.bindsIdJag ? { ...endpoint, dpop: this.dpop } : endpoint;
  }

  /**
   * This user's ID token, checked ({@link readSubject}); with several IdPs, one from the user's own
   * IdP only (once it is known): an ID token naming another is not sent anywhere.
   */
  private subject(source: IdTokenSupplier, reason: IdTokenReason, maxAge?: number): Promise<Subject> {
    const idps = this.options.idps;
    const issuers = idps.length < 2 ? undefined : this.user.idp?.issuer !== undefined ? [this.user.idp.issuer] : idps.map((idp) => idp.issuer ?? '');
    return readSubject({ options: this.options, now: this.now, user: this.user, issuers }, source, reason, maxAge);
  }


}
