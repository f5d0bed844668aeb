import type { SessionResolver } from '../engine/authorize.js';
import { sessionResolver, type FetchSession } from '../engine/sessions.js';
import type { Engine } from '../engine/engine.js';
import { resolveNow, throwing } from './fetch.js';

/** A `user` function that threw: the request fails with its error when a token is needed. */
class Thrown {
  constructor(readonly error: unknown) {}
}

/** No user (the function returned `undefined`): a WeakMap cannot hold `undefined` as a value. */
const NO_USER = Symbol('no user');

/**
 * The user of each logical request, read once, at its first dispatch. undici's redirect and retry
 * handlers dispatch the next hop or attempt again with the same handler object, from a socket
 * callback or a timer whose async context is not the caller's (the connection's, whoever opened it):
 * reading the user there would give another user's token, or none. So the user is remembered by
 * handler, for the handler's lifetime.
 */
export class RequestUsers {
  private readonly keys = new WeakMap<object, unknown>();
  /** The key the session below resolves; set only for the synchronous call that reads it. */
  private pinned: unknown;
  private readonly readKey: (() => unknown) | undefined;
  private readonly fixed: SessionResolver | undefined;
  private readonly ofPinned: SessionResolver;

  constructor(engine: Engine, session: FetchSession) {
    // Validates the session (a ConfigurationError for a bad `user`, `idp` or `idToken`).
    const resolver = sessionResolver(engine, session);
    const { user, idp } = session;
    if (typeof user === 'function' || typeof idp === 'function') {
      // The user and their IdP, read together once per logical request: the IdP is part of who the
      // user is (one key at two IdPs is two users).
      this.readKey = () => {
        const key = typeof user === 'function' ? user() : user;
        return key === undefined ? undefined : { key, idp: typeof idp === 'function' ? idp() : idp };
      };
      const pinned = () => this.pinned as { key: unknown; idp: unknown } | undefined;
      this.ofPinned = sessionResolver(engine, {
        user: () => pinned()?.key as string | undefined,
        ...(idp === undefined ? {} : { idp: () => pinned()?.idp as string | undefined }),
        idToken: session.idToken,
      });
    } else {
      // One user for every request: nothing to remember.
      this.fixed = resolver;
      this.ofPinned = resolver;
    }
  }

  /** Whether each request has its own user (the `user` or `idp` option is a function). */
  get perRequest(): boolean {
    return this.readKey !== undefined;
  }

  /**
   * The session of the logical request `handler` belongs to, resolved now; the resolver answers (or
   * throws) the same every time.
   */
  sessionOf(handler: object): SessionResolver {
    if (this.fixed) return resolveNow(this.fixed);
    const key = this.keyOf(handler);
    if (key instanceof Thrown) return throwing(key.error);
    this.pinned = key === NO_USER ? undefined : key;
    try {
      return resolveNow(this.ofPinned);
    } finally {
      this.pinned = undefined;
    }
  }

  /**
   * Remembers the user of a request outside the resource: a redirect may bring its next hop inside,
   * dispatched where the caller's context is gone.
   */
  note(handler: object): void {
    if (this.readKey) this.keyOf(handler);
  }

  private keyOf(handler: object): unknown {
    // Only a handler that holds a dispatch function (undici's redirect and retry handlers) can
    // dispatch again: the others' users need no remembering, and a WeakMap entry costs.
    if (typeof (handler as { dispatch?: unknown }).dispatch !== 'function') return readKey(this.readKey!);
    let key = this.keys.get(handler);
    if (key === undefined) {
      key = readKey(this.readKey!);
      this.keys.set(handler, key);
    }
    return key;
  }
}

function readKey(read: () => unknown): unknown {
  try {
    return read() ?? NO_USER;
  } catch (error) {
    return new Thrown(error);
  }
}
