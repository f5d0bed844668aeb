import type { ResourceBinding } from './binding.js';
import { asksForDpopNonce, bearerChallenge } from '../oauth/challenge.js';
import { ConfigurationError, CrossAppAccessError } from '../errors.js';
import { isInside } from '../url-rules.js';
import type { Answer, Engine, Session, Target, WarmToken } from './engine.js';
import { acquiredAfter, obtainToken, receivedAfter } from './replacement.js';
import type { AccessToken } from './tokens.js';
import { DEFAULTS } from '../options/defaults.js';
import { credentialOf, type Credential } from './credential.js';

// A request may be authorized again at most twice (after a 401, or a step-up): 3 attempts in all
// (MCP authorization spec, "Step-Up Authorization Flow"; the MCP conformance suite checks it).
const MAX_REAUTHORIZATIONS = DEFAULTS.maxReauthorizations;

/**
 * How an adapter sends one request for the engine: the HTTP stack's side of {@link authorize}.
 */
export interface Exchange<A extends Answer> {
  /**
   * Sends the request: without a token (`token` undefined: the target is not known to be protected
   * yet), or with it (a Bearer token's value, or a DPoP-bound token that needs a new proof for every
   * request sent, redirects included), never letting a redirect take it where `inResource` says no.
   */
  send(token: Credential | undefined, inResource: (url: URL) => boolean): Promise<A>;
  /** Whether the request can be sent again (a body past the replay cap cannot). */
  replayable(): boolean | Promise<boolean>;
}

/** Who the request is for: resolved once, when a token is first needed; undefined fails closed. */
export type SessionResolver = (input?: unknown, init?: unknown, rest?: readonly unknown[]) => Session | undefined;

/**
 * One request through the engine, for any HTTP stack: the target's resource (learned from a 401 if
 * need be), its user's token, and the answers that call for another try (a 401 with our token: one
 * re-acquisition; a 403 `insufficient_scope`: step-ups), within the per-request budget. Returns the
 * answer to hand back; every other answer it got was discarded.
 */
export async function authorize<A extends Answer>(
  engine: Engine,
  target: Target,
  sessionFor: SessionResolver,
  signal: AbortSignal | null | undefined,
  exchange: Exchange<A>,
  /** What the warm path already used: the loop starts from its binding and token (the exchange holds the answer). */
  warm?: WarmToken,
): Promise<A> {
  if (warm) return authorizedLoop(engine, target, warm.binding, requireSession(sessionFor), signal, exchange, false, warm.token);
  let session: Session | undefined;
  const resolve = (): Session => (session ??= requireSession(sessionFor));
  let binding = engine.find(target) ?? (await engine.configuredBinding(target, sessionIfKnown(sessionFor), signal)) ?? (await engine.learnedByFleet(target, signal));
  let probed = false;
  if (!binding) {
    // Not known to be protected: sent as it is; a Bearer challenge teaches the resource (RFC 9728 §5.1).
    const answer = await exchange.send(undefined, () => false);
    const learned = await discardOnFailure(answer, engine.learn(answer, target, sessionIfKnown(sessionFor), signal));
    if (!learned) return answer;
    resolve();
    // Past the replay cap the body is gone: the resource is learned for next time; the 401 goes back.
    if (!(await discardOnFailure(answer, Promise.resolve(exchange.replayable())))) return answer;
    await answer.discard();
    binding = learned;
    probed = true;
  }
  return authorizedLoop(engine, target, binding, resolve(), signal, exchange, probed);
}

/**
 * Sends with a token; on 401 or 403, re-acquires or steps up within the per-request budget. After a
 * 401 the retry carries a token that can be expected to work: one received after the refused one;
 * if that one came from a store and is refused too, one acquired after that refusal.
 */
async function authorizedLoop<A extends Answer>(
  engine: Engine,
  target: Target,
  binding: ResourceBinding,
  session: Session,
  signal: AbortSignal | null | undefined,
  exchange: Exchange<A>,
  probed: boolean,
  first?: AccessToken,
): Promise<A> {
  // Requests sent with (or, the probe, before) a token: never more than 1 + MAX_REAUTHORIZATIONS.
  let sent = probed ? 1 : 0;
  // Whether a 401 already led to a new token (the probe's did).
  let replaced = probed;
  let current = engine.forUser(binding, session);
  // `fresh`: acquired for this request after the last refusal, so a 401 for it is the server's answer.
  let { token, fresh } = first ? { token: first, fresh: false } : await obtainToken(engine, current, session, signal);
  let stepUps = 0;
  while (true) {
    const answer = await exchange.send(credentialOf(token, engine.dpop), (url) => isInside(url.origin, url.pathname, current.boundary));
    sent++;
    // An answer from outside the resource (a redirect led there) is not the resource's: as it came.
    if (!answer.fromResource) return answer;
    // RFC 9449 §9: a request for a nonce does not refuse the token, and the exchange has sent its one
    // retry with the nonce already: a new token would meet the same answer.
    if (answer.status === 401 && token.tokenType === 'DPoP' && asksForDpopNonce(answer.headers)) return answer;
    if (answer.status === 401) {
      const refusedAt = engine.now();
      if ((replaced && fresh) || sent > MAX_REAUTHORIZATIONS || !(await exchange.replayable())) {
        // A token from a store is dropped; one this request just acquired stays, so a server
        // refusing every token costs one acquisition per request, not two.
        if (!(replaced && fresh)) engine.dropRejected(current, session, token);
        return answer;
      }
      if (replaced) {
        // The replacement came from a store and is refused too: one acquisition after this refusal.
        engine.dropRejected(current, session, token);
        await answer.discard();
        ({ token, fresh } = await obtainToken(engine, current, session, signal, acquiredAfter(token, refusedAt)));
        continue;
      }
      replaced = true;
      // A challenge naming other metadata: the URL belongs to another resource now. The token is
      // still good for `current` unless the move made `current` stale.
      const pointedTo = await discardOnFailure(answer, engine.resourceNamedByChallenge(answer, current, target, signal));
      if (!pointedTo || engine.registry.forgetIfSuperseded(current, pointedTo)) {
        engine.dropRejected(current, session, token);
        if (pointedTo) session.user.forgetStepUp(current.resource);
      }
      await answer.discard();
      ({ token, fresh } = pointedTo
        ? await obtainToken(engine, (current = pointedTo), session, signal)
        : await obtainToken(engine, current, session, signal, receivedAfter(token)));
      continue;
    }
    const stepped = answer.status === 403 && stepUps < engine.options.maxStepUps && sent <= MAX_REAUTHORIZATIONS
      ? stepUpFor(engine, session, answer, current, token)
      : undefined;
    if (!stepped || !(await exchange.replayable())) return answer;
    stepUps++;
    await answer.discard();
    token = await engine.steppedUpToken(stepped.binding, session, stepped.challenged, signal);
    // A 401 for it next is answered as for any token from a store: a replacement received after it.
    fresh = false;
    session.user.adopt(stepped.binding);
    current = stepped.binding;
  }
}

/** A 403 `insufficient_scope` challenge with a scope (RFC 6750 §3.1): the binding to step up to. */
function stepUpFor(engine: Engine, session: Session, answer: Answer, current: ResourceBinding, token: AccessToken): { binding: ResourceBinding; challenged: string } | undefined {
  const challenge = bearerChallenge(answer.headers);
  if (challenge?.error !== 'insufficient_scope' || !challenge.scope) return undefined;
  const binding = engine.registry.stepUp(current, session.user.steppedUp(current.resource), challenge.scope, token.scope);
  return binding && { binding, challenged: challenge.scope };
}

/**
 * The session if a user is known; a probe does not need one yet. A user key the engine refuses
 * outright (too long) fails the request before anything is sent.
 */
function sessionIfKnown(sessionFor: SessionResolver): Session | undefined {
  try {
    return sessionFor();
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    return undefined;
  }
}

/** A protected request with no user fails closed: it is never sent with another user's token, nor without one. */
function requireSession(sessionFor: SessionResolver): Session {
  const session = sessionFor();
  if (!session) {
    throw new CrossAppAccessError('No user could be resolved for a request to a protected resource; it was not sent. The user option must name the signed-in user of every request (e.g. from AsyncLocalStorage).', {
      code: 'unknown_user',
      stage: 'request',
    });
  }
  session.user.assertUsable();
  return session;
}

/** Awaits `work`; if it fails, frees the answer we were holding before passing the error on. */
async function discardOnFailure<T>(answer: Answer, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    await answer.discard();
    throw error;
  }
}
