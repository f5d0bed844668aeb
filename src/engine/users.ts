import { LRUCache } from 'lru-cache';
import { CrossAppAccessError } from '../errors.js';

/** Users an engine remembers (their ID-token identity and whether they have acquired before). */
const MAX_USERS = 100_000;

/** What an engine knows of one user key. */
export class UserState {
  /** `iss` + `sub` (+ `tenant`) of the first ID token seen under this key. */
  private identity: string | undefined;
  /** Set once an ID token named someone else: this key is refused until it is forgotten. */
  private mixedUp = false;
  /** Whether a token was acquired before (the `idToken` reason is then 'renewal'). */
  acquiredBefore = false;
  /** False once forgotten (or evicted): an acquisition that started before does not store its token. */
  current = true;

  constructor(readonly key: string) {}

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

/** The users of one engine, by the application's key; the least recently seen are forgotten past a bound. */
export class Users {
  // A state dropped (evicted or forgotten) is no longer current: whoever holds it resolves the key again.
  private readonly states = new LRUCache<string, UserState>({ max: MAX_USERS, dispose: (state) => (state.current = false) });

  get(key: string): UserState {
    let state = this.states.get(key);
    if (!state) this.states.set(key, (state = new UserState(key)));
    return state;
  }

  /** Sign-out: the key starts afresh; acquisitions under way for it keep nothing. */
  forget(key: string): void {
    this.states.delete(key);
  }
}
