import { untilAborted } from '../abort.js';
import { CrossAppAccessError, untrustedText } from '../errors.js';
import { makeEmitter, type CrossAppAccessEvent } from '../events.js';
import type { FetchLike } from '../fetch-types.js';
import { Acquirer } from './acquirer.js';
import { WorkloadAcquirer } from './workload-acquirer.js';
import type { IdTokenSupplier } from './id-token.js';
import type { ResourceBinding } from './binding.js';
import { Discovery, type SharedDocuments } from '../oauth/discovery.js';
import { Dpop } from '../oauth/dpop/dpop.js';
import type { ConfiguredResource, IdTokenSource, ResolvedIdp, ResolvedOptions } from '../options/types.js';
import { memoryTokenStore } from '../stores/memory.js';
import type { TokenStore } from '../stores/token-store.js';
import { isInside, insecureUrlReason } from '../url-rules.js';
import { Flights } from './flights.js';
import { FleetResources } from './fleet-resources.js';
import { ResourceLearning } from './learning.js';
import { RenewalPauses } from './renewal-pauses.js';
import { warmPathStats } from './stats.js';
import { meets, noteAcquired, noteTaken, type Need } from './replacement.js';
import { ResourceRegistry } from './resources.js';
import type { AccessToken } from './tokens.js';
import { requireUserKeyLength, Users, type UserState } from './users.js';

/** What the warm path found: the binding a request goes with, and a usable token for it. */
export interface WarmToken {
  readonly binding: ResourceBinding;
  readonly token: AccessToken;
}

/** A request's target, read once by the adapter. */
export interface Target {
  /** The URL as the caller gave it (the fetch adapter compares it to reuse its last target). */
  readonly href: string;
  readonly url: URL;
  readonly origin: string;
  readonly path: string;
}

/** The target at a parsed URL: the one place a {@link Target} is built. */
export function targetAt(url: URL, href = url.href): Target {
  return { href, url, origin: url.origin, path: url.pathname };
}

/** One user's part in a request: who, where their ID tokens come from, and their events. */
export interface Session {
  readonly user: UserState;
  readonly source: IdTokenSupplier;
  readonly acquirer: Acquirer;
  readonly emit: (event: CrossAppAccessEvent) => void;
  /** A resolver that answers this session, made once (adapters resolve a request's user to it). */
  itself?: () => Session;
}

/**
 * Everything that is not per request: options, discovery and metadata caches, learned resources, the
 * credential binding, the token store, acquisitions under way and the users. It knows nothing of
 * fetch or undici: adapters ask it whether a URL may carry a token, which token, and what an answer
 * means (see `authorize.ts`).
 */
export class Engine {
  readonly emit: (event: CrossAppAccessEvent) => void;
  readonly now: () => number;
  readonly discovery: Discovery;
  readonly registry: ResourceRegistry;
  readonly store: TokenStore;
  readonly flights = new Flights();
  readonly users = new Users();
  /** Token key → epoch ms before which a failed background renewal is not tried again. */
  private readonly renewalPauses: RenewalPauses;
  /** The process's warm-path counters (metrics read them; the warm path only increments). */
  private readonly stats = warmPathStats();
  /** The configured IdPs by issuer: a request that names its IdP finds it in one lookup. */
  private readonly idpsByIssuer: ReadonlyMap<string, ResolvedIdp>;
  private readonly learning: ResourceLearning;
  /** Resources other processes of a fleet learned (when the store shares discovery results). */
  private readonly fleetResources: FleetResources | undefined;
  /** DPoP (RFC 9449), when configured: the key, the servers' nonces, the proofs. */
  readonly dpop: Dpop | undefined;

  /** The fetch for metadata and token requests. */
  private readonly oauthFetch: FetchLike;
  /** Runs the engine's own requests when they go through the global fetch (see {@link markOwnRequests}). */
  private runOwn: (<T>(send: () => T) => T) | undefined;

  constructor(
    readonly options: ResolvedOptions,
    /** The fetch for metadata and token requests; default: the global fetch, read at each call. */
    oauthFetch?: FetchLike,
  ) {
    this.oauthFetch = oauthFetch ?? ((url, init) => (this.runOwn ? this.runOwn(() => globalThis.fetch(url, init)) : globalThis.fetch(url, init)));
    this.now = options.now;
    this.dpop = options.dpop === undefined ? undefined : new Dpop(options.dpop, this.now);
    this.emit = makeEmitter(options.onEvent);
    this.store = options.store ?? memoryTokenStore({ max: options.maxCachedTokens });
    const shared = sharedDocuments(this.store);
    this.discovery = new Discovery(this.oauthFetch, options.timeoutMs, this.emit, this.now, options.retry, undefined, shared);
    this.registry = new ResourceRegistry(options, this.discovery, this.dpop?.cacheId);
    this.fleetResources = shared && new FleetResources(shared, this.registry, this.now);
    this.store.attach?.({ now: this.now, emit: this.emit, forgetLocally: (user) => this.forgotten(user) });
    this.renewalPauses = new RenewalPauses(this.now);
    this.idpsByIssuer = new Map(options.idps.flatMap((idp) => (idp.issuer === undefined ? [] : [[idp.issuer, idp] as const])));
    this.learning = new ResourceLearning(options, this.discovery, this.registry, this.emit, (target) => this.configuredFor(target), this.fleetResources);
  }

  /**
   * Has the engine's own metadata and token requests run inside `run`, when they go through the
   * global fetch (no `oauthFetch` was given), so that an undici interceptor installed as the global
   * dispatcher can tell them apart and let them pass: they still go where every other request of
   * the process goes (its proxy, its TLS settings). Set once; says whether it was set now.
   */
  markOwnRequests(run: <T>(send: () => T) => T): boolean {
    if (this.options.oauthFetch !== undefined || this.runOwn !== undefined) return false;
    this.runOwn = run;
    return true;
  }

  /** The session of `userKey` ('' for a one-user wrapper), reading ID tokens from `idToken`. */
  session(userKey: string, idToken: IdTokenSource, isStatic: boolean, idpIssuer?: string): Session {
    requireUserKeyLength(userKey);
    const named = idpIssuer === undefined ? undefined : this.idpNamed(idpIssuer);
    const user = this.users.get(userKey, named?.issuer);
    // Named by the application, else the engine's only one; else learned from the user's first ID token (Acquirer.bindIdp).
    user.idp ??= named ?? (this.options.idps.length === 1 ? this.options.idps[0] : undefined);
    // The warm path asks for the same user's session again and again: made once per user and source.
    const known = user.session;
    // Checked on the user's own fields: the warm path reads no other object to find its session.
    if (known !== undefined && user.sessionRead === idToken && user.sessionStatic === isStatic) return known;
    user.sessionRead = idToken;
    user.sessionStatic = isStatic;
    const emit = known?.emit ?? (userKey === '' ? this.emit : (event: CrossAppAccessEvent) => this.emit({ ...event, user: userKey }));
    // Workload identity: the platform's JWT instead of the IdP leg (SEP-1933).
    const acquisitions = this.options.assertion ? WorkloadAcquirer : Acquirer;
    const acquirer = known?.acquirer ?? new acquisitions(this.options, this.oauthFetch, this.discovery, emit, this.now, user, this.registry.registrations, this.dpop);
    return (user.session = { user, source: { read: idToken, isStatic }, acquirer, emit });
  }

  /** The configured IdP with this issuer, which the application named for a request; else `idp_not_allowed`. */
  private idpNamed(issuer: string): ResolvedIdp {
    const idp = this.idpsByIssuer.get(issuer);
    if (idp) return idp;
    throw new CrossAppAccessError(`The request names the IdP ${untrustedText(issuer, 200)}, which is not one of the IdPs configured; nothing was sent.`, {
      code: 'idp_not_allowed',
      stage: 'request',
    });
  }

  /**
   * Whether a URL may carry a token at all: inside a configured resource, or, without any, any URL
   * a token may go to (not plain http off loopback, no credentials in it) (RFC 8707 §2; RFC 6750 §5.3).
   */
  mayCarryToken(target: Target): boolean {
    const resources = this.options.resources;
    if (resources.length === 0) return insecureUrlReason(target.url) === undefined;
    // Indexed: asked on every request, it makes no iterator.
    for (let i = 0; i < resources.length; i++) if (isInside(target.origin, target.path, resources[i]!.boundary)) return true;
    return false;
  }

  /** The configured resource that covers `target` (the most specific, when they nest); else undefined. */
  configuredFor(target: Target): ConfiguredResource | undefined {
    let best: ConfiguredResource | undefined;
    for (const configured of this.options.resources) {
      if (isInside(target.origin, target.path, configured.boundary) && (!best || configured.boundary.prefix.length > best.boundary.prefix.length)) best = configured;
    }
    return best;
  }

  /** The learned (or configured) resource that covers `target`, without I/O; else undefined. */
  find(target: Target): ResourceBinding | undefined {
    return this.registry.findFor(target);
  }

  /** The binding of the configured resource covering `target` (discovered once), or undefined when none is configured or found. */
  async configuredBinding(target: Target, session: Session | undefined, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    const configured = this.configuredFor(target);
    if (configured === undefined) return undefined;
    session?.acquirer.prefetchIdp();
    return untilAborted(this.registry.forConfiguredResource(configured), signal);
  }

  /**
   * The binding another process of the fleet learned for `target` from a 401 (see
   * {@link FleetResources}): no probe, no metadata request. Undefined without a fleet's store, or
   * when none covers the target.
   */
  async learnedByFleet(target: Target, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    if (!this.fleetResources || this.options.resources.length > 0) return undefined;
    return untilAborted(this.fleetResources.bindingFor(target), signal);
  }

  /**
   * The cache key of this user's token for `binding`: the partition of the user's IdP and the
   * registration serving them, and the user key. Only once the user's IdP is known.
   */
  tokenKey(binding: ResourceBinding, session: Session): string {
    return this.keyOf(binding, session.user);
  }

  private keyOf(binding: ResourceBinding, user: UserState): string {
    if (!user.idp) throw new Error('cross-app-access: internal error: a token key before the user\'s IdP was known');
    const partition = this.registry.partition(binding, user.idp);
    // The same string object each time: its hash is computed once, not on every lookup.
    if (user.lastPartition !== partition) {
      // After the partition's NUL (JSON has none of its own): `n` for a user whose IdP the request
      // names, `u` otherwise, then the key: the two namespaces never share a token.
      user.lastTokenKey = `${partition}\u0000${user.named ? 'n' : 'u'}${user.key}`;
      user.lastPartition = partition;
      // The token read last was for another key: never reused for this one.
      user.lastToken = undefined;
    }
    return user.lastTokenKey!;
  }

  /** Acquisitions are per user state, not per key text: after `forget`, the key's next holder never joins the last one's. */
  private flightKey(tokenKey: string, session: Session): string {
    return `${tokenKey}\u0000${session.user.id}`;
  }

  /** The binding this user uses for `shared`: their own stepped-up one, if they stepped up. */
  forUser(shared: ResourceBinding, session: Session): ResourceBinding {
    return session.user.steppedUp(shared.resource) ?? shared;
  }

  /**
   * The warm path, with no I/O and no promise: the binding (the user's own, if they stepped up) and a
   * usable stored token for this target and user; undefined when anything else is needed.
   */
  warmToken(target: Target, session: Session): WarmToken | undefined {
    const shared = this.registry.findFor(target);
    if (!shared || !session.user.idp || session.user.signedOut) return undefined;
    session.user.assertUsable();
    const binding = this.forUser(shared, session);
    const key = this.tokenKey(binding, session);
    const token = this.heldToken(key, session.user);
    const now = this.now();
    if (!token || now >= token.expiresAt) return undefined;
    if (now >= token.renewAt) this.renewInBackground(binding, session, key);
    this.stats.hits++;
    // The same answer object while nothing changed: the warm path allocates none per request.
    const last = session.user.lastWarm as WarmToken | undefined;
    if (last !== undefined && last.token === token && last.binding === binding) return last;
    return (session.user.lastWarm = { binding, token });
  }

  /**
   * The stored token under `key` for `user`: the one read last time, while the store says it still
   * holds it (no lookup among every user's tokens), else read again. One of each user's reads in
   * sixteen goes to the store anyway, so that every token in use stays recently used there.
   */
  private heldToken(key: string, user: UserState): AccessToken | undefined {
    const last = user.lastToken;
    // `last` was read under `key` (keyOf forgets it whenever the user's key changes).
    if (last !== undefined && user.lastTokenKey === key && (++user.heldReads & 15) !== 0 && this.store.isCurrent?.(last)) return last;
    const token = this.store.get(key);
    user.lastToken = token;
    return token;
  }

  /**
   * The warm path: a usable stored token, with no I/O and no promise; else an acquisition. Every
   * token handed out passes here or {@link warmToken}: a user key refused for naming two people gets none.
   */
  tokenFor(binding: ResourceBinding, session: Session, signal: AbortSignal | null | undefined): AccessToken | Promise<AccessToken> {
    session.user.assertUsable();
    if (!session.user.idp) return this.tokenAfterIdp(binding, session, signal);
    const key = this.tokenKey(binding, session);
    const token = this.storedFor(key, session);
    if (!token || this.now() >= token.expiresAt) {
      this.stats.misses++;
      return this.acquire(binding, session, key, signal);
    }
    if (this.now() >= token.renewAt) this.renewInBackground(binding, session, key);
    this.stats.hits++;
    return token;
  }

  /**
   * The stored token under `key` for this session's user; none for a user signed out while the
   * request waited: the key's next holder may keep a token under that same key by now.
   */
  storedFor(key: string, session: Session): AccessToken | undefined {
    return session.user.signedOut ? undefined : this.store.get(key);
  }

  /** A user whose IdP is not known yet (several IdPs): their first ID token names it, then as {@link tokenFor}. */
  private async tokenAfterIdp(binding: ResourceBinding, session: Session, signal: AbortSignal | null | undefined): Promise<AccessToken> {
    await this.knowIdp(session, signal, binding);
    return this.tokenFor(binding, session, signal);
  }

  /** Learns the user's IdP when it is not known yet (several IdPs: their first ID token names it; a workload: its first assertion for `binding`). */
  async knowIdp(session: Session, signal: AbortSignal | null | undefined, binding?: ResourceBinding): Promise<void> {
    if (!session.user.idp) await untilAborted(session.acquirer.bindIdp(session.source, binding), signal);
  }

  /**
   * One shared acquisition per token key (and `need`: the retry after a 401 needs a token received
   * after a point, see replacement.ts); this caller may stop waiting, it goes on. While a caller
   * waits, the acquisition's retry waits hold the process; once every caller has left, not.
   */
  acquire(binding: ResourceBinding, session: Session, key: string, signal: AbortSignal | null | undefined, requiredScopes?: readonly string[], need?: Need): Promise<AccessToken> {
    const flightKey = need ? `${this.flightKey(key, session)}\u0000${need.flight}` : this.flightKey(key, session);
    const flight = this.flights.obtain(flightKey, (liveness) => {
      const acquire = () => session.acquirer.acquire(binding, session.source, { requiredScopes, liveness });
      // Signed out meanwhile: its own token, used once; nothing read from or kept in any store.
      if (session.user.signedOut) return acquire();
      return this.stored(key, session, this.fromStoreOr(binding, key, session, (t) => meets(t, need, this.now()), acquire));
    });
    const release = flight.liveness.hold();
    const waiting = untilAborted(flight.token, signal);
    waiting.then(release, release);
    return waiting;
  }

  /** Stores what an acquisition got, unless its user signed out meanwhile (then it is used once, not kept). */
  private async stored(key: string, session: Session, acquiring: Promise<AccessToken>): Promise<AccessToken> {
    const token = await acquiring;
    if (session.user.current) this.store.set(key, token, session.user.key);
    return token;
  }

  /**
   * A local miss. With a second level (a fleet's shared store): its token if it holds one `usable`
   * says will do, else one acquisition across the fleet, saved there unless the user signed out
   * meanwhile. Without one: an acquisition.
   */
  private async fromStoreOr(binding: ResourceBinding, key: string, session: Session, usable: (token: AccessToken) => boolean, acquire: () => Promise<AccessToken>): Promise<AccessToken> {
    const store = this.store;
    const acquired = async () => {
      const token = await acquire();
      noteAcquired(token);
      return token;
    };
    if (!store.obtain) return acquired();
    const started = this.now();
    let acquiredIt = false;
    const token = await store.obtain(key, session.user.key, {
      usable,
      // Reading the ID token, then every attempt of both legs timing out and every retry wait at its longest.
      maxDurationMs: this.options.timeoutMs + this.options.retry.maxElapsedMs,
      acquire: async () => {
        acquiredIt = true;
        const token = await acquired();
        if (session.user.current) await store.save?.(key, token, session.user.key);
        return token;
      },
    });
    if (!acquiredIt) {
      noteTaken(token);
      const now = this.now();
      session.emit({ type: 'token_shared', resource: binding.resource, expiresIn: Math.round((token.expiresAt - now) / 1000), fingerprint: token.fingerprint, durationMs: now - started });
    }
    return token;
  }

  /** Renews ahead of expiry while the current token keeps being served (RFC 6749 §5.1 `expires_in`). */
  private renewInBackground(binding: ResourceBinding, session: Session, key: string): void {
    const flightKey = this.flightKey(key, session);
    if (this.flights.has(flightKey) || this.renewalPauses.paused(key)) return;
    const started = this.now();
    const flight = this.flights.obtain(flightKey, (liveness) =>
      // Another process may have renewed it already: its token will do if it is not due for renewal.
      this.stored(key, session, this.fromStoreOr(binding, key, session, (t) => this.now() < t.renewAt, () => session.acquirer.acquire(binding, session.source, { background: true, liveness }))),
    );
    flight.token.then(
      () => this.renewalPauses.clear(key),
      (error: unknown) => {
        this.renewalPauses.pause(key);
        this.reportFailure(error, started, session.emit);
      },
    );
  }

  /** Sign-out: the user's tokens, pauses and state go; acquisitions under way keep nothing. */
  async forget(userKey: string): Promise<void> {
    const started = this.now();
    this.forgetHere(userKey);
    try {
      await this.store.deleteUser(userKey);
    } finally {
      // Signed out here even when the shared store could not be reached (the caller gets that error).
      this.emit({ type: 'signed_out', by: 'this_process', user: userKey, durationMs: this.now() - started });
    }
  }

  /** The user's renewal pauses and state (the identity its ID tokens named) go. */
  private forgetHere(userKey: string): void {
    this.renewalPauses.forgetUser(userKey);
    this.users.forget(userKey);
  }

  /** Another process signed `user` out: the key starts afresh here too (the store dropped its tokens). */
  private forgotten(user: string): void {
    this.forgetHere(user);
    this.emit({ type: 'signed_out', by: 'another_process', user, durationMs: 0 });
  }

  /**
   * A caller that is not an adapter saw a 401 for `value` (`invalidate`): drops it if it is still the
   * stored token of that user (a token already replaced is left alone). Says whether it did.
   */
  invalidate(binding: ResourceBinding, userKey: string, idpIssuer: string | undefined, value: string): boolean {
    const user = this.users.peek(userKey, idpIssuer === undefined ? undefined : this.idpNamed(idpIssuer).issuer);
    if (!user?.idp) return false;
    const key = this.keyOf(binding, user);
    const stored = this.store.get(key);
    if (stored?.value !== value || !this.store.delete(key, stored)) return false;
    (user.session?.emit ?? this.emit)({ type: 'token_invalidated', resource: binding.resource, fingerprint: stored.fingerprint, reason: 'unauthorized', durationMs: this.now() - stored.receivedAt });
    return true;
  }

  /**
   * The binding for a target with no 401 to learn from (`getAccessToken`): learned or configured,
   * else from the server's RFC 9728 metadata at its well-known URL.
   */
  async bindingAt(target: Target, session: Session, expectedResource: string | undefined, signal: AbortSignal | null | undefined): Promise<ResourceBinding> {
    const configured = await this.configuredBinding(target, session, signal);
    if (configured && this.find(target) === configured) return configured;
    const prm = await untilAborted(this.discovery.protectedResource(target.url, undefined, expectedResource ?? this.configuredFor(target)?.resource), signal);
    session.acquirer.prefetchIdp();
    return untilAborted(this.registry.fromMetadata(prm, undefined), signal);
  }

  /** A 401 for `rejected`: drop it if it is still the stored one (a straggler's 401 drops nothing). */
  dropRejected(binding: ResourceBinding, session: Session, rejected: AccessToken): void {
    if (this.store.delete(this.tokenKey(binding, session), rejected)) {
      session.emit({ type: 'token_invalidated', resource: binding.resource, fingerprint: rejected.fingerprint, reason: 'unauthorized', durationMs: this.now() - rejected.receivedAt });
    }
  }

  /**
   * 403 insufficient_scope: a token for previous ∪ challenged scopes, all of which must be granted
   * (MCP authorization spec, "Step-Up Authorization Flow").
   */
  async steppedUpToken(stepped: ResourceBinding, session: Session, challenged: string, signal: AbortSignal | null | undefined): Promise<AccessToken> {
    session.user.assertUsable();
    const started = this.now();
    const wanted = new Set(challenged.split(' '));
    const key = this.tokenKey(stepped, session);
    const known = this.storedFor(key, session);
    const token = known && this.now() < known.expiresAt ? known : await this.acquire(stepped, session, key, signal, stepped.scopes?.filter((s) => wanted.has(s)));
    session.emit({ type: 'step_up', resource: stepped.resource, challenged, scope: stepped.scopes?.join(' ') ?? '', durationMs: this.now() - started });
    return token;
  }

  /** An unauthenticated request answered 401 with a Bearer challenge: its resource, learned (see {@link ResourceLearning.learn}). */
  learn(answer: Answer, target: Target, session: Session | undefined, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    return this.learning.learn(answer, target, session, signal);
  }

  /** The resource a 401's challenge points to when it is not `current`'s (see {@link ResourceLearning.resourceNamedByChallenge}). */
  resourceNamedByChallenge(answer: Answer, current: ResourceBinding, target: Target, signal: AbortSignal | null | undefined): Promise<ResourceBinding | undefined> {
    return this.learning.resourceNamedByChallenge(answer, current, target, signal);
  }

  /** A request outside the configured resources answered 401 (see {@link ResourceLearning.noticeOutside}). */
  noticeOutside(status: number, headers: { get(name: string): string | null }, target: Target): CrossAppAccessError | undefined {
    return this.learning.noticeOutside(status, headers, target);
  }

  reportFailure(error: unknown, started: number, emit: (event: CrossAppAccessEvent) => void = this.emit): void {
    if (error instanceof CrossAppAccessError) {
      emit({
        type: 'failure',
        stage: error.stage,
        code: error.code,
        message: error.message,
        ...(error.status === undefined ? {} : { status: error.status }),
        ...(error.error === undefined ? {} : { error: error.error }),
        durationMs: this.now() - started,
      });
    }
  }
}

/** What the engine needs of an answer from the resource, whatever the HTTP stack. */
export interface Answer {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** True when the answer came through a redirect (it does not speak for the URL that was asked). */
  readonly redirected: boolean;
  /** False when a redirect led a tokened request out of the resource: the answer is not the resource's. */
  readonly fromResource: boolean;
  /** Frees the answer's body (its connection), once it will not be read. */
  discard(): Promise<void>;
}

/** The store's second level for discovery results, when it has one (a fleet's): see {@link SharedDocuments}. */
function sharedDocuments(store: TokenStore): SharedDocuments | undefined {
  const { readDocument, writeDocument } = store;
  if (!readDocument || !writeDocument) return undefined;
  return { read: (name) => readDocument.call(store, name), write: (name, value, ttlMs) => writeDocument.call(store, name, value, ttlMs) };
}
