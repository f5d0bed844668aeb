/**
 * One redacted line per request the dev servers answer: tokens as SHA-256 fingerprints (the first 8
 * hex digits, as in the client's events), secrets never, unknown form fields by name only.
 */
import { createHash } from 'node:crypto';
import { decodeBasic, type RequestLogEntry } from './servers/http-util.js';
import type { DevServerName } from './start.js';

const SHOWN = new Set([
  'grant_type',
  'client_id',
  'requested_token_type',
  'subject_token_type',
  'client_assertion_type',
  'audience',
  'resource',
  'scope',
  'sub',
  'rpc',
  'error',
  'error_description',
]);
const TOKENS = new Set(['subject_token', 'actor_token', 'assertion', 'client_assertion', 'refresh_token', 'id_token', 'access_token', 'code']);

/** `sha256:` and the first 8 hex digits of the value's SHA-256. */
export function fingerprintOf(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
}

const shorten = (value: string) => value.replace(/^urn:ietf:params:oauth:(grant-type|token-type|client-assertion-type):/, '');

function authorization(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const bearer = /^bearer\s+(\S+)/i.exec(header);
  if (bearer) return `bearer=${fingerprintOf(bearer[1]!)}`;
  const basic = decodeBasic(header);
  if (basic.kind === 'basic') return `basic=${basic.clientId}`; // the secret half is never shown
  return 'authorization=(redacted)';
}

/** The log line for one request (no trailing newline). */
export function formatRequest(server: DevServerName | string, entry: RequestLogEntry, now = new Date()): string {
  const fields: string[] = [];
  const auth = authorization(entry.authorization);
  if (auth) fields.push(auth);
  for (const [name, value] of Object.entries(entry.notes)) {
    if (TOKENS.has(name)) fields.push(`${name}=${fingerprintOf(value)}`);
    else if (SHOWN.has(name)) fields.push(`${name}=${/\s/.test(value) ? JSON.stringify(shorten(value)) : shorten(value)}`);
    else fields.push(`${name}=(redacted)`);
  }
  const time = now.toISOString().slice(11, 23);
  return `${time} ${server.padEnd(3)} ${entry.method} ${entry.path} ${entry.status} ${entry.durationMs}ms${fields.length > 0 ? `  ${fields.join(' ')}` : ''}`;
}
