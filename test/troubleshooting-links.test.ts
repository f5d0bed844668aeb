/**
 * Every doctor fix ends with a link to a section of docs/troubleshooting.md (`see('…')` in
 * src/cli/doctor/): each section it names must exist there, by the anchor GitHub gives its heading,
 * and the link is the repository's URL (the npm package ships no docs/).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { see, TROUBLESHOOTING_URL } from '../src/cli/doctor/step.js';
import { repoRoot } from './helpers/node-process.js';

/** GitHub's heading anchor: lower case, punctuation other than `-` and `_` dropped, spaces as `-`. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

describe('docs/troubleshooting.md', () => {
  const page = readFileSync(join(repoRoot, 'docs/troubleshooting.md'), 'utf8');
  const anchors = new Set([...page.matchAll(/^## (.+)$/gm)].map((m) => slug(m[1]!)));
  const doctorDir = join(repoRoot, 'src/cli/doctor');
  const linked = new Set(readdirSync(doctorDir).flatMap((file) => [...readFileSync(join(doctorDir, file), 'utf8').matchAll(/see\('([a-z0-9-]+)'\)/g)].map((m) => m[1]!)));

  it('has a section for every section a doctor fix links to', () => {
    expect(linked.size).toBeGreaterThan(15);
    expect([...linked].filter((anchor) => !anchors.has(anchor))).toEqual([]);
  });

  it('links by URL to the page in the repository package.json names (the npm package ships no docs/)', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { repository: { url: string } };
    const repository = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    expect(TROUBLESHOOTING_URL).toBe(`${repository}/blob/main/docs/troubleshooting.md`);
    expect(see('unreachable')).toBe(` See ${repository}/blob/main/docs/troubleshooting.md#unreachable`);
    const doctorSources = readdirSync(doctorDir).map((file) => readFileSync(join(doctorDir, file), 'utf8')).join('\n');
    expect(doctorSources).not.toMatch(/[^/]docs\/[a-z-]+\.md/); // every docs page by URL
  });

  it('links within the page resolve', () => {
    const internal = [...page.matchAll(/\]\(#([a-z0-9-]+)\)/g)].map((m) => m[1]!);
    expect(internal.filter((anchor) => !anchors.has(anchor))).toEqual([]);
  });
});
