/**
 * The options `npx cross-app-access dev` prints for pasting type-check as printed, under strict and
 * exactOptionalPropertyTypes, in a Node project with the DOM lib and in one without it (where
 * `Response.json()` is `Promise<unknown>`). Needs `npm run build` (the snippet imports the package).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { renderDevBanner } from '../src/cli/dev/banner.js';

const config = {
  mcpUrl: 'http://127.0.0.1:4100/mcp',
  idpIssuer: 'http://127.0.0.1:4101',
  idpClientId: 'dev-agent',
  idTokenUrl: 'http://127.0.0.1:4101/dev/id-token',
  asIssuer: 'http://127.0.0.1:4102',
  clientId: 'dev-client',
  clientSecret: 'dev-secret',
  authMethod: 'client_secret_basic',
} as const;

/** The lines between "Options to paste" and the environment variables, as a module. */
function printedSnippet(): string {
  const banner = renderDevBanner(config, 'alice', 'id-token');
  const start = banner.indexOf('Options to paste into your code:');
  const end = banner.indexOf('Or as environment variables');
  const code = banner.slice(start, end).split('\n').slice(1).join('\n');
  expect(code).toContain('withCrossAppAccess(fetch, {');
  return `${code}\nexport { authedFetch };\n`;
}

// Inside the package, so that 'cross-app-access' resolves to the built package (a self-reference).
const dir = join(import.meta.dirname, 'types', '.generated');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function typeErrors(lib: string[]): string[] {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'dev-snippet.ts');
  writeFileSync(file, printedSnippet());
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noEmit: true,
    lib,
    types: ['node'],
  });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('the options dev prints', () => {
  it('type-check without the DOM lib (@types/node alone: json() is Promise<unknown>)', () => {
    expect(typeErrors(['lib.es2022.d.ts'])).toEqual([]);
  });
  it('type-check with the DOM lib', () => {
    expect(typeErrors(['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'])).toEqual([]);
  });
});
