/**
 * The package's numbers in one table: each option's default, then the fixed limits and clock skews
 * it applies. docs/options.md ("Defaults and limits") lists every entry with its value, and
 * test/defaults-docs.test.ts keeps the two in step. Internal: not exported from the package.
 */
export const DEFAULTS = Object.freeze({
  // ---- Option defaults (docs/options.md, the options table) ----
  /** `timeout`: each metadata and token request, its body included, and the `idToken` function. */
  timeoutMs: 10_000,
  /** `retry.retries`: tries after the first. */
  retries: 2,
  /** `retry.baseDelay`: the first back-off, doubling with each retry (with jitter). */
  retryBaseDelayMs: 250,
  /** `retry.maxDelay`: a longer wait (back-off or `Retry-After`) ends the retries instead. */
  retryMaxDelayMs: 30_000,
  /** `renewBefore` unset: renew max(this, 10 % of the lifetime) before expiry, never more than half of it. */
  renewBeforeFloorMs: 60_000,
  /** `defaultTokenLifetime`: a token with no `expires_in` and no JWT `exp` (RFC 6749 §5.1: expires_in is RECOMMENDED). */
  defaultTokenLifetimeMs: 3_600_000,
  /** `maxStepUps`: step-ups per request after a 403 `insufficient_scope`. */
  maxStepUps: 2,
  /** `maxReplayBodyBytes`: a stream body kept for a replay after a 401/403. */
  maxReplayBodyBytes: 1024 * 1024,
  /** `maxCachedTokens`, and the memory store's `max`. */
  maxCachedTokens: 1000,

  // ---- Fixed limits and skews (docs/options.md, "Defaults and limits") ----
  /** An ID token whose `exp` passed less than this long ago is still sent (clock skew; OpenID Connect Core §3.1.3.7 allows one). */
  idTokenLeewaySeconds: 30,
  /** Clock skew allowed when the ID-JAG's `exp` is checked before it is sent. */
  idJagClockSkewSeconds: 30,
  /** An `expires_in` beyond this is clamped: renewal re-checks the IdP's policy (ID-JAG draft -04 §4.4.3). */
  maxTokenLifetimeSeconds: 24 * 3600,
  /** Largest token response read (bytes). */
  maxTokenResponseBytes: 64 * 1024,
  /** Largest metadata document read (bytes). */
  maxMetadataBytes: 256 * 1024,
  /** A refused attempt's body read and dropped (keeping its connection) up to this size (undici). */
  maxDiscardedBytes: 64 * 1024,
  /** Metadata documents cached this long. */
  metadataTtlMs: 60 * 60 * 1000,
  /** A failed discovery is not repeated for this long. */
  discoveryFailureBackoffMs: 2_000,
  /** Metadata documents cached per engine, least recently used dropped. */
  maxCachedDocuments: 256,
  /** A server's `Retry-After` holds its endpoint for at most this long (RFC 9110 §10.2.3). */
  maxEndpointHoldMs: 5 * 60_000,
  /** Endpoints held at most, least recently used dropped. */
  maxHeldEndpoints: 1000,
  /** After a failed background renewal, the next is not tried for this long (the valid token is served). */
  renewalRetryMs: 5_000,
  /** Failed renewals remembered (to pause them) at most. */
  maxRenewalPauses: 10_000,
  /** Protected resources learned per engine at most, least recently used dropped. */
  maxLearnedResources: 1000,
  /** Users an engine remembers at most (their ID-token identity). */
  maxUsers: 100_000,
  /** Longest user key, in characters. */
  maxUserKeyLength: 1024,
  /** Distinct URLs outside the configured resources reported (as diagnostics) once each, at most. */
  maxOutsideReports: 100,
  /** How long an ID token read to learn the user's IdP may wait for the acquisition it was read for. */
  preReadMaxAgeMs: 60_000,
  /** Redirects followed at most (Fetch standard, "HTTP-redirect fetch"). */
  maxRedirects: 20,
  /** Re-authorizations of one request at most (after a 401, or a step-up): 3 attempts in all (MCP authorization, "Step-Up Authorization Flow"). */
  maxReauthorizations: 2,
  /** Users whose last token an MCP SDK auth provider remembers, at most. */
  maxAuthProviderUsers: 10_000,
  /** Token generations a 401 refused that the Redis store remembers (never taken from Redis again), at most. */
  maxRejectedGenerations: 10_000,
  /** How deep a chain of error `cause`s is followed. */
  maxCauseDepth: 8,
  /** Servers (origins) whose latest DPoP nonce is remembered at most, least recently used dropped (RFC 9449 §8, §9). */
  maxDpopNonceOrigins: 1000,
  /** Longest DPoP nonce kept from a `DPoP-Nonce` header; a longer one is ignored. */
  maxDpopNonceLength: 512,
});
