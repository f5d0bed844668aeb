/**
 * The layers of src/ (docs/architecture.md): no import runs back up a layer. Type-only imports are
 * allowed where a signature names a type of a higher layer; values never.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []));
}

/** Value imports (not `import type`) of each file under src/, as paths relative to src/. */
function valueImports(): Array<{ file: string; target: string }> {
  return files(SRC).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    return [...text.matchAll(/^import (?!type )[^;]*?from '(\.[^']+)'/gms)].map((m) => ({
      file: relative(SRC, file),
      target: relative(SRC, join(file, '..', m[1]!)).replace(/\.js$/, ''),
    }));
  });
}

const FORBIDDEN: Array<[from: RegExp, to: RegExp, why: string]> = [
  [/^oauth\//, /^(engine|adapters|stores|cli)\/|^cross-app-access$/, 'oauth/ is the wire protocol: it stands alone'],
  [/^stores\//, /^(engine|adapters|cli)\/|^cross-app-access$/, 'stores/ know nothing of the engine'],
  [/^engine\//, /^(adapters|cli)\/|^cross-app-access$/, 'the engine knows no HTTP stack and no public class'],
  [/^adapters\//, /^cli\/|^cross-app-access$/, 'adapters reach the engine, not the public class'],
  [/^(?!cli\/)/, /^cli\//, 'nothing imports the CLI'],
];

describe('src/ layers', () => {
  it('no value import runs back up a layer', () => {
    const imports = valueImports();
    expect(imports.length).toBeGreaterThan(100);
    const violations = imports.flatMap(({ file, target }) =>
      FORBIDDEN.filter(([from, to]) => from.test(file) && to.test(target)).map(([, , why]) => `${file} imports ${target}: ${why}`),
    );
    expect(violations).toEqual([]);
  });
});
