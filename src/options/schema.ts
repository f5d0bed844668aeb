import { z } from 'zod';
import { privateKeyProblem, type PrivateKeyInput } from '../oauth/client-assertion.js';
import type { ClientCredentials } from '../oauth/client-auth.js';
import type { CrossAppAccessEvent } from '../events.js';
import type { FetchLike } from '../fetch-types.js';
import type { TokenStore } from '../stores/token-store.js';
import { insecureUrlReason, parseUrl } from '../url-rules.js';
import type { CrossAppAccessOptions, IdTokenSource } from './types.js';
import type { WorkloadAssertionSource } from './workload-types.js';
import { dpopOptionProblem, type DpopOption } from '../oauth/dpop/key.js';

const secureUrl = z.string().superRefine((value, ctx) => {
  const url = parseUrl(value);
  if (!url) {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute URL' });
    return;
  }
  const reason = insecureUrlReason(url);
  if (reason) ctx.addIssue({ code: 'custom', message: reason });
  if (url.hash !== '') ctx.addIssue({ code: 'custom', message: 'must not contain a fragment' });
});

// A lone UTF-16 surrogate cannot be form-encoded (RFC 6749 App. B needs UTF-8): refuse it up front.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const wellFormed = (s: string) => !LONE_SURROGATE.test(s);
const nonEmpty = z.string().min(1, 'expected a non-empty string').refine(wellFormed, 'contains a lone UTF-16 surrogate');
// An empty secret is never sent (strict servers answer invalid_client): use authMethod 'none' instead.
const secret = z.string().min(1, "must not be empty (omit it, or use authMethod 'none')").refine(wellFormed, 'contains a lone UTF-16 surrogate');
const authMethod = z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
const privateKey = z.custom<PrivateKeyInput>((v) => v !== undefined && v !== null).superRefine((value, ctx) => {
  const problem = privateKeyProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const signingAlg = z.enum(['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']);
/** One scope token: RFC 6749 §3.3 characters, and no comma. */
export const scopeToken = z
  .string()
  // RFC 6749 §3.3 allows a comma in a scope token, but "a,b" is surely a list written the wrong way.
  .refine((s) => !s.includes(','), 'must be space-separated, not comma-separated (e.g. "files:read files:write" or ["files:read", "files:write"])')
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected scope tokens (RFC 6749 §3.3)');

/**
 * A duration in milliseconds with a floor below which the value surely meant seconds
 * (`timeout: 10`); the message says so.
 */
function milliseconds(floor: number, max: number, { allowZero = false }: { allowZero?: boolean } = {}) {
  return z
    .number()
    .int()
    .min(allowZero ? 0 : 1)
    .max(max)
    .refine((ms) => (allowZero && ms === 0) || ms >= floor, {
      error: (issue) =>
        `must be ${allowZero ? '0 or ' : ''}at least ${floor}: it is in milliseconds (${String(issue.input)} means ${String(issue.input)} ms; for ${String(issue.input)} seconds write ${Number(issue.input) * 1000})`,
    });
}

/** The fields `idp` and `client` share ({@link ClientCredentials}). */
const credentialFields = {
  clientId: nonEmpty,
  clientSecret: secret.optional(),
  authMethod: authMethod.optional(),
  privateKey: privateKey.optional(),
  keyId: nonEmpty.optional(),
  signingAlg: signingAlg.optional(),
};

type Credentials = { clientSecret?: string | undefined; authMethod?: string | undefined; privateKey?: unknown };

function credentialsRule(value: Credentials, ctx: z.RefinementCtx): void {
  const method = value.authMethod;
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && value.clientSecret === undefined) {
    ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `is required by authMethod '${method}'` });
  }
  if (method === 'private_key_jwt' && value.privateKey === undefined) {
    ctx.addIssue({ code: 'custom', path: ['privateKey'], message: "is required by authMethod 'private_key_jwt'" });
  }
  if (method === 'none' && (value.clientSecret !== undefined || value.privateKey !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['authMethod'], message: "is 'none' but a clientSecret or privateKey is set: remove one of them" });
  }
}

// Strict objects: a misspelt option (say `clientSecrett`) is an error, not a silently public client.
export const idpSchema = z.strictObject({
  issuer: secureUrl.optional(),
  tokenEndpoint: secureUrl.optional(),
  ...credentialFields,
});
export const clientSchema = z.strictObject({
  ...credentialFields,
  issuer: secureUrl.optional(),
  idp: secureUrl.optional(),
});
export const retrySchema = z.strictObject({
  retries: z.number().int().min(0).max(10).optional(),
  baseDelay: z.number().int().min(0).max(60_000).optional(),
  maxDelay: z.number().int().min(0).max(600_000).optional(),
});

/** One IdP: an issuer (discovered) or a token endpoint, and this client's credentials there. */
const idpEntry = idpSchema.superRefine((value, ctx) => {
  if (value.issuer === undefined && value.tokenEndpoint === undefined) {
    ctx.addIssue({ code: 'custom', message: 'needs issuer (discovered) or tokenEndpoint' });
  }
  // Both given: one would silently win. The issuer only matters for discovery (RFC 8414 §3).
  if (value.issuer !== undefined && value.tokenEndpoint !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'has both issuer and tokenEndpoint: keep issuer to discover the token endpoint from the IdP metadata, or tokenEndpoint to skip discovery',
    });
  }
  credentialsRule(value, ctx);
});
const clientEntry = clientSchema.superRefine(credentialsRule);

/**
 * One entry, or a non-empty list of them, validated entry by entry (each issue keeps its own path,
 * `idp[1].clientId`), and always read as a list.
 */
function oneOrList<T extends z.ZodType>(entry: T, what: string) {
  return z.unknown().transform((value, ctx): z.output<T>[] => {
    const list: unknown[] = Array.isArray(value) ? value : [value];
    if (list.length === 0) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, or a non-empty list of them` });
      return z.NEVER;
    }
    const parsed: z.output<T>[] = [];
    list.forEach((item, i) => {
      const result = entry.safeParse(item);
      if (result.success) parsed.push(result.data);
      else for (const issue of result.error.issues) ctx.addIssue({ ...(issue as object), path: Array.isArray(value) ? [i, ...issue.path] : issue.path } as never);
    });
    return parsed;
  });
}

/** With several IdPs, an ID token is routed by its `iss`: each needs an issuer, none twice. */
function idpListRule(idps: readonly { issuer?: string | undefined }[], ctx: z.RefinementCtx): void {
  if (idps.length < 2) return;
  const seen = new Set<string>();
  idps.forEach((idp, i) => {
    if (idp.issuer === undefined) ctx.addIssue({ code: 'custom', path: [i, 'issuer'], message: 'is required in a list of IdPs: an ID token goes to the IdP whose issuer equals its iss claim' });
    else if (seen.has(idp.issuer)) ctx.addIssue({ code: 'custom', path: [i, 'issuer'], message: 'appears twice in the list of IdPs' });
    else seen.add(idp.issuer);
  });
}

/** With several registrations, each names its authorization server (and maybe its IdP), no pair twice. */
function clientListRule(clients: readonly { issuer?: string | undefined; idp?: string | undefined }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  clients.forEach((client, i) => {
    if (clients.length > 1 && client.issuer === undefined) {
      ctx.addIssue({ code: 'custom', path: [i, 'issuer'], message: "is required in a list of registrations: a resource is served with the registration of the authorization server its metadata names" });
      return;
    }
    const pair = JSON.stringify([client.issuer, client.idp]);
    if (seen.has(pair)) ctx.addIssue({ code: 'custom', path: [i], message: `registers ${client.issuer}${client.idp ? ` for ${client.idp}` : ''} a second time` });
    seen.add(pair);
  });
}

/** A one-user wrapper's options ({@link CrossAppAccessOptions}). */
export const schema = z.strictObject({
  // Either idToken and idp, or assertion: resolve.ts checks which (a refined object cannot be omitted from).
  idToken: z
    .union([nonEmpty, z.custom<IdTokenSource>((v) => typeof v === 'function')], {
      error: 'expected a non-empty string or a function',
    })
    .optional(),
  assertion: z.custom<WorkloadAssertionSource>((v) => typeof v === 'function', 'expected a function returning the platform-issued JWT').optional(),
  subjectTokenType: z.enum(['id_token', 'saml2', 'refresh_token']).optional(),
  idp: oneOrList(idpEntry, 'an IdP ({ issuer or tokenEndpoint, clientId, … })').superRefine(idpListRule).optional(),
  client: oneOrList(clientEntry, 'a client registration ({ clientId, … })').superRefine(clientListRule),
  scope: z
    .union([z.string(), z.array(scopeToken)], { error: 'expected a space-separated string or an array of scope tokens' })
    .optional(),
  resource: oneOrList(secureUrl, 'a resource URL').superRefine((resources, ctx) => {
    if (new Set(resources).size !== resources.length) ctx.addIssue({ code: 'custom', message: 'lists a resource twice' });
  }).optional(),
  timeout: milliseconds(100, 600_000).optional(),
  retry: z.union([z.literal(false), retrySchema], { error: 'expected false or { retries, baseDelay, maxDelay }' }).optional(),
  renewBefore: milliseconds(1000, 86_400_000, { allowZero: true }).optional(),
  defaultTokenLifetime: milliseconds(60_000, 86_400_000).optional(),
  // At most 3 authorization attempts per request, counting the first (the MCP conformance suite checks this).
  maxStepUps: z.number().int().min(0).max(2).optional(),
  maxReplayBodyBytes: z.number().int().min(0).max(1024 * 1024 * 1024).optional(),
  maxCachedTokens: z.number().int().positive().max(10_000_000).optional(),
  now: z.custom<() => number>((v) => typeof v === 'function', 'expected a function returning epoch milliseconds').optional(),
  onEvent: z.custom<(event: CrossAppAccessEvent) => void>((v) => typeof v === 'function', 'expected a function').optional(),
  checkIdJag: z.boolean().optional(),
  dpop: z.custom<DpopOption | false>((v) => v !== undefined).superRefine((value, ctx) => {
    const problem = dpopOptionProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }).optional(),
  oauthFetch: z.custom<FetchLike>((v) => typeof v === 'function', 'expected a fetch function').optional(),
});

const STORE_METHODS = ['get', 'set', 'delete', 'deleteUser'] as const;
const tokenStore = z.custom<TokenStore>(
  (v) => typeof v === 'object' && v !== null && STORE_METHODS.every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
  `expected a TokenStore (an object with ${STORE_METHODS.join(', ')})`,
);

/** An engine's options: no idToken (each user's session brings one), but perhaps a shared store. */
export const engineSchema = schema.omit({ idToken: true }).extend({ store: tokenStore.optional() });

/** The keys each object option knows, for "did you mean" (by option path). */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': [...Object.keys(schema.shape), 'store'],
  idp: Object.keys(idpSchema.shape),
  client: Object.keys(clientSchema.shape),
  retry: Object.keys(retrySchema.shape),
};
