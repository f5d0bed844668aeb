/**
 * A bounded soak: 10,000 requests through one wrapper at concurrency 50, with random revocations
 * (401s) and a virtual clock that crosses many renewal windows and expiries. Every request must be
 * answered 200, the number of exchanges must stay within what those events allow, and nothing may be
 * left running afterwards.
 *
 * The protected resource is a tiny node:http server rather than the real MCP SDK server of
 * test/servers/mcp-server.ts: the SDK server builds a McpServer and transport per request and is too
 * slow for 10,000 requests in a few seconds. Its tokens are still verified for real, by the AS.
 */
import { describe, expect, it } from 'vitest';
import { withCrossAppAccess, type CrossAppAccessEvent, type FetchLike } from '../src/index.js';
import { stackOptions } from './helpers/stack-options.js';
import { pathnameOf, readBody, sendJson, startHttpServer } from './servers/http-util.js';
import { startStack } from './servers/stack.js';
import { mulberry32 } from './helpers/prng.js';

const REQUESTS = 10_000;
const CONCURRENCY = 50;
const POISON_PROBABILITY = 0.01;
const MAX_CLOCK_STEP_MS = 200;
// Short-lived tokens, so that the ~1000 s of virtual time cross about a hundred renewal windows.
// Server-side they are checked against the real clock, which the run stays well within.
const TOKEN_TTL_SECONDS = 20;
const RENEW_BEFORE_MS = 10_000;
const SEED = 0x5eed_c0de;


const WATCHED_RESOURCES = ['Timeout', 'TCPSocketWrap', 'TCPServerWrap'] as const;

/** How many timers, sockets and listening servers are alive (ref'd), by type. */
function watchedResources(): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(WATCHED_RESOURCES.map((t) => [t, 0]));
  for (const type of process.getActiveResourcesInfo()) {
    if (type in counts) counts[type]!++;
  }
  return counts;
}

function noMoreThan(after: Record<string, number>, before: Record<string, number>): boolean {
  return WATCHED_RESOURCES.every((t) => (after[t] ?? 0) <= (before[t] ?? 0));
}

function bearerOf(init: RequestInit | undefined): string | undefined {
  const header = new Headers(init?.headers).get('authorization');
  const match = header === null ? null : /^Bearer (\S+)$/.exec(header);
  return match?.[1];
}

describe('soak', () => {
  it(
    `${REQUESTS} requests at concurrency ${CONCURRENCY} with random 401s and expiries: all answered 200, exchanges bounded, nothing left running`,
    async () => {
      const resourcesBefore = watchedResources();

      const stack = await startStack({
        // The virtual clock runs ~1000 s ahead of the real one: keep ID-JAGs from looking expired.
        idp: { jagTtlSeconds: 7200 },
        as: { accessTokenTtlSeconds: TOKEN_TTL_SECONDS },
        bindResource: false,
      });
      const { idp, as } = stack;

      // ---- The protected resource -------------------------------------------------------------
      let resource = '';
      /** Tokens this test revoked (the only revocations there are). */
      const revoked = new Set<string>();
      /** Request ids answered 401 on their first attempt whose retry has not arrived yet. */
      const awaitingRetry = new Set<string>();
      const attempts = new Map<string, number>();
      /** Requests the wrapper has sent to the resource and not yet had an answer to, by token. */
      const inFlight = new Map<string, number>();
      const served = { ok: 0, unauthorized: 0, poisonSeen: 0, poisoned: 0, poisonDeclined: 0, badBody: 0, finalUnauthorized: 0 };

      /**
       * A poison is honoured only when no request is between a 401 and its retry, and no request
       * in flight carries an already revoked token. Otherwise a second revocation could race a
       * straggler's single retry, which then legitimately ends in a 401 (one re-acquisition per
       * request) — not what this soak is about.
       */
      function mayPoison(token: string): boolean {
        if (awaitingRetry.size > 0) return false;
        for (const t of inFlight.keys()) if (t !== token && revoked.has(t)) return false;
        return true;
      }

      const resourceServer = await startHttpServer(async (req, res) => {
        const path = pathnameOf(req);
        if (path === '/.well-known/oauth-protected-resource/mcp' && req.method === 'GET') {
          return sendJson(res, 200, { resource, authorization_servers: [as.issuer], bearer_methods_supported: ['header'] });
        }
        if (path !== '/mcp') return sendJson(res, 404, { error: 'not_found' });

        // Everything up to the answer's status is decided synchronously, so that no client-side
        // continuation can slip in between the checks and the revocation.
        const id = String(req.headers['x-soak-id']);
        const attempt = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, attempt);
        if (attempt > 1) awaitingRetry.delete(id);
        const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
        const token = match?.[1];
        const info = token === undefined ? undefined : as.verifyAccessToken(token);
        let status: 200 | 401 = info !== undefined && info.resource === resource ? 200 : 401;
        const poison = attempt === 1 && req.headers['x-soak-poison'] === '1';
        if (poison) served.poisonSeen++;
        // A poisoned request that already carries a revoked token gets its 401 anyway.
        if (poison && status === 200 && token !== undefined) {
          if (mayPoison(token)) {
            as.revoke(token);
            revoked.add(token);
            served.poisoned++;
            status = 401;
          } else {
            served.poisonDeclined++;
          }
        }
        if (status === 401) {
          served.unauthorized++;
          if (attempt === 1) awaitingRetry.add(id);
          else served.finalUnauthorized++;
        }

        // The body must arrive intact on the retry as on the first attempt.
        const body = await readBody(req);
        if (body !== JSON.stringify({ id })) {
          served.badBody++;
          return sendJson(res, 400, { error: 'bad_body' });
        }
        if (status === 401) {
          return sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
        }
        served.ok++;
        return sendJson(res, 200, { ok: true, id });
      });
      resource = `${resourceServer.url}/mcp`;
      as.allowedResources = [resource];

      // ---- The wrapper --------------------------------------------------------------------------
      const next: FetchLike = async (url, init) => {
        const token = String(url).startsWith(resourceServer.url) ? bearerOf(init) : undefined;
        if (token !== undefined) inFlight.set(token, (inFlight.get(token) ?? 0) + 1);
        try {
          return await fetch(url, init);
        } finally {
          if (token !== undefined) {
            const left = (inFlight.get(token) ?? 1) - 1;
            if (left > 0) inFlight.set(token, left);
            else inFlight.delete(token);
          }
        }
      };

      const virtualStart = Date.now();
      let virtualNow = virtualStart;
      const events: Record<string, number> = {};
      const authedFetch = withCrossAppAccess(
        next,
        stackOptions(stack, {
          resource,
          now: () => virtualNow,
          renewBefore: RENEW_BEFORE_MS,
          // A small cache still works: one user and one resource need one entry.
          maxCachedTokens: 1,
          onEvent: (event: CrossAppAccessEvent) => {
            events[event.type] = (events[event.type] ?? 0) + 1;
          },
        }),
      );

      // Which requests are poisoned (~1 %) and how far each moves the clock (0-200 ms), fixed by the
      // seed. Renewals often take several virtual seconds under load, so tokens also expire while a
      // renewal is still in flight: the expiry path is exercised as well.
      const random = mulberry32(SEED);
      const plan = Array.from({ length: REQUESTS }, () => ({
        poison: random() < POISON_PROBABILITY,
        step: Math.floor(random() * (MAX_CLOCK_STEP_MS + 1)),
      }));

      // ---- The run --------------------------------------------------------------------------
      const statuses = new Map<number, number>();
      const errors: unknown[] = [];
      let nextIndex = 0;
      async function worker(): Promise<void> {
        while (nextIndex < REQUESTS) {
          const i = nextIndex++;
          const { poison, step } = plan[i]!;
          virtualNow += step;
          try {
            const response = await authedFetch(resource, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-soak-id': String(i), ...(poison ? { 'x-soak-poison': '1' } : {}) },
              body: JSON.stringify({ id: String(i) }),
            });
            await response.arrayBuffer();
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          } catch (error) {
            errors.push(error);
          }
        }
      }
      try {
        await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      } finally {
        await resourceServer.close();
        await stack.close();
      }
      const virtualSpan = virtualNow - virtualStart;

      // ---- Every request answered ------------------------------------------------------------------
      expect(errors).toEqual([]);
      expect(Object.fromEntries(statuses)).toEqual({ 200: REQUESTS });
      expect(served.finalUnauthorized).toBe(0);
      expect(served.badBody).toBe(0);
      expect(served.ok).toBe(REQUESTS);
      expect(awaitingRetry.size).toBe(0);
      expect(inFlight.size).toBe(0);

      // The run did what it was meant to: revocations, renewals and many renewal windows crossed.
      const poisonPlanned = plan.filter((p) => p.poison).length;
      expect(poisonPlanned).toBeGreaterThanOrEqual(50);
      expect(served.poisoned).toBeGreaterThanOrEqual(10);
      expect(served.poisonSeen).toBe(poisonPlanned);
      expect(served.poisoned + served.poisonDeclined).toBeLessThanOrEqual(poisonPlanned);
      // A token is renewed RENEW_BEFORE_MS before it expires (at most half its lifetime before).
      const renewalPeriodMs = TOKEN_TTL_SECONDS * 1000 - Math.min(RENEW_BEFORE_MS, (TOKEN_TTL_SECONDS * 1000) / 2);
      expect(virtualSpan).toBeGreaterThan(50 * renewalPeriodMs);
      expect(events.token_renewed ?? 0).toBeGreaterThanOrEqual(10);
      expect(events.token_renewed ?? 0).toBeLessThanOrEqual(Math.ceil(virtualSpan / renewalPeriodMs));
      expect(events.token_invalidated ?? 0).toBeGreaterThanOrEqual(1);
      // Each revoked token is invalidated at most once (generation check), never a token nobody revoked.
      expect(events.token_invalidated ?? 0).toBeLessThanOrEqual(served.poisoned);
      expect(events.failure ?? 0).toBe(0);
      expect(events.retry ?? 0).toBe(0);

      // ---- Exchange count within bounds -----------------------------------------------------------
      const exchanges = idp.counters.exchange;
      // One initial token, one per revocation, one per renewal period the virtual span allows, slack of 2.
      const upperBound = served.poisoned + Math.ceil(virtualSpan / renewalPeriodMs) + 2;
      // No token serves more than its lifetime (plus one clock step between requests).
      const lowerBound = Math.max(2, Math.floor(virtualSpan / (TOKEN_TTL_SECONDS * 1000 + MAX_CLOCK_STEP_MS)));
      expect(exchanges).toBeLessThanOrEqual(upperBound);
      expect(exchanges).toBeGreaterThanOrEqual(lowerBound);
      expect(as.counters.grant).toBe(exchanges);
      expect((events.token_issued ?? 0) + (events.token_renewed ?? 0)).toBe(exchanges);
      // A 401 storm after a revocation shares one acquisition: apart from the first token, tokens are
      // acquired in the foreground after an invalidation, or when one expired before its renewal ran
      // (the virtual clock runs on while a loaded machine is slow to start it). Seen: the first token
      // plus 0 to 2 such expiries; 4 gives room for one more, while a 401 storm not shared (dozens of
      // requests carry each revoked token) would exceed it many times over.
      expect(events.token_issued ?? 0).toBeLessThanOrEqual((events.token_invalidated ?? 0) + 4);
      // Metadata was discovered once, not per acquisition.
      expect(idp.counters.metadata).toBe(1);
      expect(as.counters.metadata).toBe(1);

      // ---- Nothing left running -----------------------------------------------------------------------
      // Client keep-alive sockets close once the servers have destroyed their ends: give them a moment.
      let resourcesAfter = watchedResources();
      for (let turn = 0; turn < 200 && !noMoreThan(resourcesAfter, resourcesBefore); turn++) {
        await new Promise((resolve) => setImmediate(resolve));
        if (turn >= 20) await new Promise((resolve) => setTimeout(resolve, 10));
        resourcesAfter = watchedResources();
      }
      expect(noMoreThan(resourcesAfter, resourcesBefore), JSON.stringify({ resourcesBefore, resourcesAfter })).toBe(true);
    },
    120_000,
  );
});
