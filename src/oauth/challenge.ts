/**
 * One challenge from a `WWW-Authenticate` header (RFC 9110 §11.6.1).
 *
 * @example
 * ```ts
 * const [challenge]: AuthChallenge[] = parseWwwAuthenticate('Bearer scope="files:read"');
 * challenge?.params.scope; // 'files:read'
 * ```
 */
export interface AuthChallenge {
  /** Lower-cased auth-scheme, e.g. `bearer`. */
  scheme: string;
  /** Parameters with lower-cased names; values unquoted and unescaped. First occurrence wins. */
  params: Record<string, string>;
  /** The token68 form (`Basic abc==`), when the challenge has one instead of parameters. */
  token68?: string;
}

/** What this package reads from a Bearer challenge (RFC 6750 §3, RFC 9728 §5.1, RFC 9470). */
export interface BearerChallenge {
  resourceMetadata?: string;
  scope?: string;
  error?: string;
  errorDescription?: string;
  maxAge?: string;
  acrValues?: string;
}

// RFC 9110 §5.6.2 tchar.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// RFC 9110 §11.2 token68.
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

class Cursor {
  pos = 0;
  constructor(readonly text: string) {}
  get done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): string {
    return this.text.charAt(this.pos);
  }
  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  skipSeparators(): void {
    while (this.peek() === ',' || this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
  /** RFC 9110 §5.6.4 quoted-string with backslash escapes; tolerates a missing closing quote. */
  quoted(): string {
    this.pos++; // opening quote
    let out = '';
    while (!this.done) {
      const ch = this.text.charAt(this.pos++);
      if (ch === '"') return out;
      if (ch === '\\' && !this.done) out += this.text.charAt(this.pos++);
      else out += ch;
    }
    return out;
  }
  /** True when, after optional spaces, the next character is `=` (so a parameter follows). */
  paramAhead(): boolean {
    const save = this.pos;
    const name = this.token();
    this.skipSpaces();
    const isParam = name !== '' && this.peek() === '=';
    this.pos = save;
    return isParam;
  }
}

/**
 * Parses a `WWW-Authenticate` value into its challenges. Handles several challenges in one header
 * (`Bearer realm="a", DPoP algs="ES256"`), repeated headers joined by `Headers.get` with `, `,
 * quoted strings with escapes and commas, and case-insensitive names (RFC 9110 §11.2, §11.6.1).
 * Malformed parts are skipped rather than thrown on: the header comes from a server.
 *
 * @example
 * ```ts
 * parseWwwAuthenticate('Bearer error="invalid_token", resource_metadata="https://x/.well-known/oauth-protected-resource"');
 * // [{ scheme: 'bearer', params: { error: 'invalid_token', resource_metadata: 'https://x/…' } }]
 * ```
 */
export function parseWwwAuthenticate(header: string | null | undefined): AuthChallenge[] {
  if (!header) return [];
  const cursor = new Cursor(header);
  const challenges: AuthChallenge[] = [];
  while (true) {
    cursor.skipSeparators();
    if (cursor.done) break;
    const scheme = cursor.token();
    if (scheme === '') {
      cursor.pos++; // not a token character: skip it and resynchronise
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    cursor.skipSpaces();
    readToken68(cursor, challenge);
    if (challenge.token68 === undefined) readParams(cursor, challenge);
  }
  return challenges;
}

function readToken68(cursor: Cursor, challenge: AuthChallenge): void {
  const match = TOKEN68.exec(cursor.text.slice(cursor.pos));
  if (!match) return;
  const after = cursor.pos + match[0].length;
  const rest = cursor.text.slice(after).replace(/^[ \t]+/, '');
  // token68 only when the end or the next challenge follows; `name=value` continues as a parameter.
  if (rest === '' || rest.startsWith(',')) {
    challenge.token68 = match[0];
    cursor.pos = after;
  }
}

function readParams(cursor: Cursor, challenge: AuthChallenge): void {
  while (true) {
    cursor.skipSeparators();
    if (cursor.done || !cursor.paramAhead()) return; // a token without `=` starts the next challenge
    const name = cursor.token().toLowerCase();
    cursor.skipSpaces();
    cursor.pos++; // '='
    cursor.skipSpaces();
    const value = cursor.peek() === '"' ? cursor.quoted() : cursor.token();
    if (!(name in challenge.params)) challenge.params[name] = value;
    cursor.skipSpaces();
    // Anything else before the next comma is garbage: skip it.
    while (!cursor.done && cursor.peek() !== ',') cursor.pos++;
  }
}

/**
 * Whether a response is RFC 9449 §9's request for a nonce: a `DPoP` challenge with
 * `error="use_dpop_nonce"`.
 */
export function asksForDpopNonce(headers: { get(name: string): string | null }): boolean {
  return dpopChallengeError(headers) === 'use_dpop_nonce';
}

/** The `error` of a response's DPoP challenge (RFC 9449 §7.1), if it has one. */
export function dpopChallengeError(headers: { get(name: string): string | null }): string | undefined {
  return parseWwwAuthenticate(headers.get('www-authenticate')).find((c) => c.scheme === 'dpop' && c.params.error !== undefined)?.params.error;
}

/**
 * The Bearer challenge of a response (else its DPoP challenge, RFC 9449 §7.1), or undefined when the
 * response has neither.
 *
 * @example
 * ```ts
 * const challenge = bearerChallenge(response.headers);
 * if (challenge?.error === 'insufficient_scope') console.log(challenge.scope);
 * ```
 */
export function bearerChallenge(headers: { get(name: string): string | null }): BearerChallenge | undefined {
  const challenges = parseWwwAuthenticate(headers.get('www-authenticate'));
  // A server that accepts DPoP-bound tokens only challenges with the DPoP scheme (RFC 9449 §7.1), whose
  // parameters (error, scope, resource_metadata of RFC 9728 §5.1) mean what Bearer's do.
  const bearer = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'dpop');
  if (!bearer) return undefined;
  const p = bearer.params;
  const out: BearerChallenge = {};
  if (p.resource_metadata !== undefined) out.resourceMetadata = p.resource_metadata;
  if (p.scope !== undefined) out.scope = p.scope;
  if (p.error !== undefined) out.error = p.error;
  if (p.error_description !== undefined) out.errorDescription = p.error_description;
  if (p.max_age !== undefined) out.maxAge = p.max_age;
  if (p.acr_values !== undefined) out.acrValues = p.acr_values;
  return out;
}
