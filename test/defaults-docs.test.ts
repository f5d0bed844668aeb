/** docs/options.md lists every entry of the defaults table (src/options/defaults.ts) with its value, and nothing else. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DEFAULTS } from '../src/options/defaults.js';

it('docs/options.md "Defaults and limits" names every default and limit with the value the code uses', () => {
  const docs = readFileSync(join(import.meta.dirname, '..', 'docs', 'options.md'), 'utf8');
  const section = docs.slice(docs.indexOf('## Defaults and limits'));
  const documented = Object.fromEntries([...section.matchAll(/^\| `(\w+)` \| `(\d+)` \|/gm)].map((m) => [m[1], Number(m[2])]));
  expect(documented).toEqual({ ...DEFAULTS });
});
