import type { CrossAppAccessErrorCode, CrossAppAccessStage } from './errors.js';

/**
 * Redacted events for logs and metrics. They never carry a token, an ID token, an ID-JAG, an
 * assertion or a secret (MCP Enterprise-Managed Authorization (stable) §7.4.2, §7.5.4); `fingerprint` is the first 8 hex
 * digits of a token's SHA-256.
 * Every event has a `durationMs`. The same events are published on `node:diagnostics_channel`: on
 * `cross-app-access` (all of them) and on `cross-app-access:<type>` (one type each).
 *
 * @example
 * ```ts
 * const onEvent = (event: CrossAppAccessEvent) => {
 *   if (event.type === 'token_issued') metrics.histogram('xaa.acquire_ms', event.durationMs);
 *   if (event.type === 'failure') log.warn({ code: event.code, stage: event.stage }, event.message);
 * };
 * ```
 */
export type CrossAppAccessEvent = EventBody & {
  /**
   * The application's user key the event concerns (an engine's per-user work: exchanges, grants,
   * tokens, retries, step-ups, failures); absent for shared work (discovery) and one-user wrappers.
   * Never a token.
   */
  user?: string;
};

/**
 * The events without their common fields.
 *
 * @inline
 */
type EventBody =
  | {
      /** A metadata document was fetched. */
      type: 'discovery';
      /** Which document: the MCP server's RFC 9728 metadata, or an RFC 8414 / OIDC document. */
      document: 'protected_resource' | 'authorization_server' | 'idp';
      /** The URL that answered. */
      url: string;
      /** How long the fetch took. */
      durationMs: number;
    }
  | {
      /** The IdP exchanged the ID token for an ID-JAG (RFC 8693 token exchange). */
      type: 'token_exchange';
      /** The IdP's token endpoint. */
      tokenEndpoint: string;
      /** The `audience` requested: the authorization server's issuer. */
      audience: string;
      /** The `resource` requested: the MCP server's resource identifier. */
      resource: string;
      /** The scopes requested, if any. */
      scope?: string;
      /** How long the exchange took. */
      durationMs: number;
    }
  | {
      /** The authorization server granted an access token for the ID-JAG (RFC 7523 JWT bearer grant). */
      type: 'jwt_bearer';
      /** The authorization server's token endpoint. */
      tokenEndpoint: string;
      /** The resource the token is for. */
      resource: string;
      /** The scopes requested, if any. */
      scope?: string;
      /** How long the grant took. */
      durationMs: number;
    }
  | {
      /** A token acquired because none was usable (`token_issued`), or ahead of expiry in the background (`token_renewed`). */
      type: 'token_issued' | 'token_renewed';
      /** The authorization server that issued it. */
      issuer: string;
      /** The resource it is for. */
      resource: string;
      /** The scope granted, when known. */
      scope?: string;
      /** Seconds until expiry, as the authorization server said (or the default lifetime). */
      expiresIn: number;
      /** The first 8 hex digits of the token's SHA-256 (never the token). */
      fingerprint: string;
      /** Wall time of the whole acquisition: ID token, exchange and grant. */
      durationMs: number;
    }
  | {
      /**
       * A token another process of the fleet acquired was taken from the shared store (the second
       * level, e.g. Redis) on a local miss: no acquisition was made.
       */
      type: 'token_shared';
      /** The resource it is for. */
      resource: string;
      /** Seconds until it expires. */
      expiresIn: number;
      /** The first 8 hex digits of the token's SHA-256 (never the token). */
      fingerprint: string;
      /** How long the store took to answer (including any wait for another process's acquisition). */
      durationMs: number;
    }
  | {
      /**
       * A user was signed out (`forget`): their tokens are dropped and their key starts afresh. With a
       * shared store, once in the process that called `forget` and once in each other process that
       * held tokens for the user, when the sign-out reaches it.
       */
      type: 'signed_out';
      /** Where `forget` was called: here, or in another process of the fleet (its message reached this one). */
      by: 'this_process' | 'another_process';
      /** How long `forget` took (dropping the user's tokens from the shared store too); 0 for another process's. */
      durationMs: number;
    }
  | {
      /** A token was dropped because the MCP server refused it. */
      type: 'token_invalidated';
      /** The resource it was for. */
      resource: string;
      /** The first 8 hex digits of the token's SHA-256. */
      fingerprint: string;
      /** Why: the MCP server answered 401. */
      reason: 'unauthorized';
      /** How long the token had been in use. */
      durationMs: number;
    }
  | {
      /** A metadata or token request failed and is tried again. */
      type: 'retry';
      /** Which step failed. */
      stage: CrossAppAccessStage;
      /** The attempt that failed (1 for the first). */
      attempt: number;
      /** Retries left, counting the one about to be made. */
      retriesLeft: number;
      /** Why the attempt failed. */
      code: CrossAppAccessErrorCode;
      /** The HTTP status, when a server answered. */
      status?: number;
      /** How long the retry waits: the server's `Retry-After`, or jittered back-off. */
      delayMs: number;
      /** How long the failed attempt took. */
      durationMs: number;
    }
  | {
      /** A 403 `insufficient_scope` challenge was answered with a token for more scopes. */
      type: 'step_up';
      /** The resource the token is for. */
      resource: string;
      /** The scopes the server's 403 `insufficient_scope` challenge asked for. */
      challenged: string;
      /** The scopes now requested: the previous ones plus the challenged ones. */
      scope: string;
      /** Wall time of acquiring the stepped-up token. */
      durationMs: number;
    }
  | {
      /** A request was rejected (one event per rejected request, and per failed background renewal). */
      type: 'failure';
      /** Where in the flow it failed. */
      stage: CrossAppAccessStage;
      /** What went wrong (the thrown error's `code`). */
      code: CrossAppAccessErrorCode;
      /** The error's message (redacted). */
      message: string;
      /** The HTTP status, when a server answered. */
      status?: number;
      /** The OAuth error (RFC 6749 §5.2 `error`), when the server sent one. */
      error?: string;
      /** How long the request took until it failed. */
      durationMs: number;
    }
  | {
      /** Something accepted leniently or worth knowing (an unusual `token_type`, an IdP that does not list token exchange…). */
      type: 'diagnostic';
      /** What happened, for people. */
      message: string;
      /** 0, or how long the step it reports on took (a store's Redis call). */
      durationMs: number;
    };

/** The `node:diagnostics_channel` channel that receives every event. */
export const DIAGNOSTICS_CHANNEL = 'cross-app-access';

interface Channel {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}

// Loaded without a static import so the package still runs where node: modules do not exist.
const diagnostics = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.('node:diagnostics_channel') as { channel(name: string): Channel } | undefined;

const channels = new Map<string, Channel>();
function channel(name: string): Channel | undefined {
  if (!diagnostics) return undefined;
  let found = channels.get(name);
  if (!found) channels.set(name, (found = diagnostics.channel(name)));
  return found;
}

/** Calls the listener (whose exceptions are swallowed) and publishes to the diagnostics channels. */
export function makeEmitter(listener: ((event: CrossAppAccessEvent) => void) | undefined): (event: CrossAppAccessEvent) => void {
  return function emit(event) {
    try {
      listener?.(event);
    } catch {
      // A listener's own bug must not fail the request it observes.
    }
    // Node never lets a subscriber's exception reach publish(): it reports it as an uncaught
    // exception on the next tick, so the request goes on either way.
    for (const name of [DIAGNOSTICS_CHANNEL, `${DIAGNOSTICS_CHANNEL}:${event.type}`]) {
      const target = channel(name);
      if (target?.hasSubscribers) target.publish(event);
    }
  };
}
