/**
 * docs/frameworks.md shows the code of the framework examples, which `npm run test:frameworks` runs:
 * every snippet marked `<!-- snippet: examples/frameworks/… -->` must appear, line for line, in that
 * file, so the page cannot drift from what CI runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/node-process.js';

const page = readFileSync(join(repoRoot, 'docs/frameworks.md'), 'utf8');
const snippets = [...page.matchAll(/<!-- snippet: (\S+) -->\n```ts\n([\s\S]*?)```/g)].map((m) => ({ file: m[1]!, code: m[2]! }));

describe('docs/frameworks.md', () => {
  it('marks a snippet from each framework example', () => {
    expect(new Set(snippets.map((s) => s.file))).toEqual(
      new Set(['ai-sdk.ts', 'mastra.ts', 'mastra-auth-provider.ts', 'langchain.ts', 'cloudflare-agent.ts'].map((f) => `examples/frameworks/${f}`)),
    );
  });

  it.each(snippets.map((s, i) => [i + 1, s.file, s.code] as const))('snippet %i is the code of %s', (_, file, code) => {
    expect(readFileSync(join(repoRoot, file), 'utf8')).toContain(code);
  });

  it('has no ```ts block without its source', () => {
    expect(page.match(/```ts\n/g)).toHaveLength(snippets.length);
  });
});
