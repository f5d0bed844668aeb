import type { z } from 'zod';
import { ConfigurationError } from '../errors.js';
import { KNOWN_KEYS } from './schema.js';

/**
 * The first problem as a {@link ConfigurationError} that names the option path: "is required" for a
 * missing option, and an unknown key by its own path, with the known key it most resembles.
 */
export function configurationError(issue: z.core.$ZodIssue | undefined, input: object): ConfigurationError {
  if (!issue) return new ConfigurationError('options', 'invalid');
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = String(issue.keys[0]).slice(0, 60);
    // `idp.1` knows what `idp` knows: list indexes are not part of the option's name.
    const suggestion = closestKey(key, KNOWN_KEYS[path.filter((p) => !/^\d+$/.test(p)).join('.')] ?? []);
    return new ConfigurationError(optionName([...path, key]), `unknown option${suggestion ? ` (did you mean ${suggestion}?)` : ''}`);
  }
  const option = path.length > 0 ? optionName(path) : 'options';
  const missing = (issue.code === 'invalid_type' || issue.code === 'invalid_union') && valueAt(input, path) === undefined;
  if (missing) {
    const expected = issue.code === 'invalid_type' ? ` (expected ${article(issue.expected)})` : ` (${issue.message})`;
    return new ConfigurationError(option, `is required${expected}`);
  }
  return new ConfigurationError(option, issue.message);
}

/** `['idp', '1', 'clientId']` as `idp[1].clientId`. */
function optionName(path: readonly string[]): string {
  return path.reduce((name, segment) => (/^\d+$/.test(segment) ? `${name}[${segment}]` : name ? `${name}.${segment}` : segment), '');
}

function valueAt(input: object, path: readonly string[]): unknown {
  let value: unknown = input;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return value;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The known key closest to a misspelt one (same letters in another case, or at most 2 edits away). */
function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Levenshtein distance, for short option names only. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
