import { ConfigurationError, CrossAppAccessError, type OAuthResponseError } from '../errors.js';
import type { ResolvedIdp } from '../options/types.js';
import type { ResourceBinding } from './binding.js';
import type { Session } from './engine.js';
import type { AccessToken } from './tokens.js';
import { DEFAULTS } from '../options/defaults.js';

/** Users an engine remembers (their ID-token identity and whether they have acquired before). */
const MAX_USERS = DEFAULTS.maxUsers;

/**
 * The longest user key an engine takes, in UTF-16 code units: an e-mail address, a session id or a
 * digest of `iss` and `sub` all fit; a key that does not would be held in every index for as long
 * as the user is remembered.
 */
export const MAX_USER_KEY_LENGTH = DEFAULTS.maxUserKeyLength;

/** Refuses a user key too long to keep, before anything is sent or stored. */
export function requireUserKeyLength(key: string): void {
  if (key.length <= MAX_USER_KEY_LENGTH) return;
  throw new ConfigurationError('user', `expected a user key of at most ${MAX_USER_KEY_LENGTH} characters, got ${key.length}; nothing was sent. Use a session id, or a digest of the ID token's iss and sub.`);
}

let nextId = 0;

/** What an engine knows of one user key. */
export class UserState {
  /**
   * Unique per state: a key reused after `forget` is a new state with a new id, so acquisitions of
   * the previous holder (keyed by this id) are never joined by the next one.
   */
  readonly id = ++nextId;
  /**
   * Resources this user stepped up (403 `insufficient_scope`), with their wider scopes: one user's
   * step-up never changes what another asks for.
   */
  private stepped: Map<string, ResourceBinding> | undefined;
  /** `iss` + `sub` (+ `tenant`) of the first ID token seen under this key. */
  private identity: string | undefined;
  /** Set once an ID token named someone else: this key is refused until it is forgotten. */
  private mixedUp = false;
  /**
   * The last subject token the IdP refused (`invalid_grant`), by fingerprint, with its error: it is
   * never sent again; every acquisition that reads it fails at once with that error.
   */
  refusedSubject: { readonly fingerprint: string; readonly error: OAuthResponseError } | undefined;
  /**
   * The IdP this user's ID tokens come from: the engine's only one, or, with a list, the one whose
   * issuer the first ID token named. Undefined until then.
   */
  idp: ResolvedIdp | undefined;
  /** While the first ID token is read to learn the IdP: concurrent requests of the user share it. */
  idpBinding: Promise<void> | undefined;
  /** This user's last session (its acquirer and events), reused while its ID-token source is the same. */
  session: Session | undefined;
  /** The ID-token source of {@link session}, kept here so the warm path reads no other object to check it. */
  sessionRead: unknown;
  sessionStatic = false;
  /** The cache partition the token key was last built for, and that key (the same string each time: hashed once). */
  lastPartition: string | undefined;
  lastTokenKey: string | undefined;
  /** The token last read from the store under {@link lastTokenKey}: reused while the store says it is current. */
  lastToken: AccessToken | undefined;
  /** Reads of {@link lastToken}: every sixteenth goes to the store, to keep the token recent there. */
  heldReads = 0;
  /** What the warm path last handed out: the same object while its binding and token stay the same. */
  lastWarm: { readonly binding: object; readonly token: AccessToken } | undefined;
  /** Seen since the bound was last enforced: spared once when the least recent users are dropped. */
  touched = false;
  /** Whether a token was acquired before (the `idToken` reason is then 'renewal'). */
  acquiredBefore = false;
  /** False once forgotten (or evicted): an acquisition that started before does not store its token. */
  current = true;
  /**
   * Set by `forget`: a request of this state still under way never reads the store again (the key's
   * next holder may keep a token there, under the same key); it acquires its own, used once, kept nowhere.
   */
  signedOut = false;

  constructor(
    readonly key: string,
    /**
     * Whether the application names this user's IdP with each request (`idp`): such users live in a
     * namespace of their own, in the engine and in every token key, apart from the same key unnamed.
     */
    readonly named = false,
  ) {}

  /**
   * Binds the key to the identity its first ID token names, and refuses any other: a session mix-up
   * in the application must not turn into one user's token reaching another (RFC 8693 §1: the
   * subject token names who the issued token is for). '' (an opaque subject) is not checked.
   */
  checkIdentity(identity: string): void {
    if (identity === '') return;
    this.identity ??= identity;
    if (this.identity !== identity) {
      this.mixedUp = true;
      throw userMixedUp(this.key);
    }
  }

  /**
   * Makes a stepped-up binding the one this user's later requests use, once its token was granted:
   * a step-up refused by the IdP must not spoil the resource for requests that need less.
   */
  adopt(stepped: ResourceBinding): void {
    const current = this.stepped?.get(stepped.resource);
    if (!current || (current.scopes ?? []).every((s) => stepped.scopes?.includes(s))) (this.stepped ??= new Map()).set(stepped.resource, stepped);
  }

  /** This user's stepped-up binding for `resource`, if they stepped up (most users never do: no Map is made for them). */
  steppedUp(resource: string): ResourceBinding | undefined {
    return this.stepped?.get(resource);
  }

  /** Forgets a stepped-up binding that no longer describes its URLs. */
  forgetStepUp(resource: string): void {
    this.stepped?.delete(resource);
  }

  /** Whether an ID token has bound this key to someone yet. */
  get hasIdentity(): boolean {
    return this.identity !== undefined;
  }

  /** Throws if an ID token for another user was seen under this key. */
  assertUsable(): void {
    if (this.mixedUp) throw userMixedUp(this.key);
  }
}

function userMixedUp(key: string): CrossAppAccessError {
  const whose = key === '' ? 'this wrapper' : `user key "${key.slice(0, 100)}"`;
  const fix = key === ''
    ? 'A wrapper made by withCrossAppAccess serves one signed-in user; for many users use new CrossAppAccess(options).fetch(fetch, { user }) with a key per user.'
    : 'Each user key must name one signed-in user; call forget() on sign-out before the key is reused.';
  return new CrossAppAccessError(`An ID token named a different user than the first one seen for ${whose}; nothing was sent, and it is refused until forgotten. ${fix}`, {
    code: 'user_mismatch',
    stage: 'id_token',
  });
}

/**
 * The users of one engine, by the application's key, and, when the application names each request's
 * IdP, by that IdP too (one key at two IdPs is two users: a map of its own per IdP, so no key can be
 * spelled to collide with another). The least recently seen are forgotten past a bound.
 */
export class Users {
  /** Users whose IdP the application does not name (the engine's only one, or learned from their ID tokens). */
  private readonly plain = new RecentUsers();
  /** IdP issuer → its users, where the application names each request's IdP. */
  private readonly byIdp = new Map<string, RecentUsers>();

  get(key: string, idp?: string): UserState {
    if (idp === undefined) return this.plain.get(key);
    let users = this.byIdp.get(idp);
    if (!users) this.byIdp.set(idp, (users = new RecentUsers(true)));
    return users.get(key);
  }

  /** The user known under `key` (and `idp`), without making one or marking it seen. */
  peek(key: string, idp?: string): UserState | undefined {
    return idp === undefined ? this.plain.peek(key) : this.byIdp.get(idp)?.peek(key);
  }

  /** Sign-out: the key starts afresh, at every IdP; requests and acquisitions under way for it get and keep nothing. */
  forget(key: string): void {
    this.plain.drop(key, true);
    for (const users of this.byIdp.values()) users.drop(key, true);
  }
}

/**
 * Users by key, the least recently seen dropped past a bound: a second-chance (CLOCK) order, so a
 * user seen again is only marked, not moved (a Map reordered on every request costs three lookups in
 * a table of up to 100,000 users). A Map rather than lru-cache, which would allocate its arrays for
 * the whole bound up front (megabytes, for users who may never come).
 */
class RecentUsers {
  private readonly states = new Map<string, UserState>();

  /** `named`: its users' IdP is named by the application with each request. */
  constructor(private readonly named = false) {}

  get(key: string): UserState {
    const state = this.states.get(key);
    if (state) {
      state.touched = true;
      return state;
    }
    const fresh = new UserState(key, this.named);
    this.states.set(key, fresh);
    if (this.states.size > MAX_USERS) this.dropLeastRecent(fresh);
    return fresh;
  }

  peek(key: string): UserState | undefined {
    return this.states.get(key);
  }

  /** Drops the oldest user not seen since it was last spared (never `added`); those seen go to the back, unmarked. */
  private dropLeastRecent(added: UserState): void {
    for (const [key, state] of this.states) {
      if (!state.touched && state !== added) {
        this.drop(key);
        return;
      }
      state.touched = false;
      this.states.delete(key);
      this.states.set(key, state);
    }
  }

  /**
   * A state dropped is no longer current: whoever holds it resolves the key again. Dropped for a
   * sign-out (not merely past the bound), it is signed out: its requests under way get no token.
   */
  drop(key: string, signedOut = false): void {
    const state = this.states.get(key);
    if (!state) return;
    state.current = false;
    state.signedOut ||= signedOut;
    this.states.delete(key);
  }
}
