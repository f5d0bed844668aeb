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
import { renderDevGatewayBanner } from '../src/cli/dev/gateway-banner.js';
import type { DevGatewayConfig } from '../src/cli/dev/gateway.js';

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

const gatewayConfig: DevGatewayConfig = {
  idps: [1, 2].map((i) => ({ issuer: `http://127.0.0.1:410${i}`, clientId: 'dev-agent', idTokenUrl: `http://127.0.0.1:410${i}/dev/id-token` })),
  servers: [1, 2, 3].map((j) => ({ mcpUrl: `http://127.0.0.1:420${j}/mcp`, asIssuer: `http://127.0.0.1:430${j}`, clientId: `dev-mcp-client-${j}`, clientSecret: 'secret' })),
};

/** The printed code between `from` and `to` in a banner, as a module. */
function printedCode(banner: string, from: string, to: string): string {
  const code = banner.slice(banner.indexOf(from), banner.indexOf(to)).split('\n').slice(1).join('\n');
  expect(code).toContain('import {');
  return code;
}

const snippets = {
  'the one-server shape': () => `${printedCode(renderDevBanner(config, 'alice', 'id-token'), 'Options to paste into your code:', 'Or as environment variables')}\nexport { authedFetch };\n`,
  // The gateway snippet reads the application's request context, which it does not declare.
  'the gateway shape (--idps 2 --servers 3)': () =>
    `${printedCode(renderDevGatewayBanner(gatewayConfig), 'Options to paste:', 'Or as an environment variable')}
declare const requestContext: { getStore(): { user: string } | undefined };
export { gatewayFetch };\n`,
};

// Inside the package, so that 'cross-app-access' resolves to the built package (a self-reference).
const dir = join(import.meta.dirname, 'types', '.generated');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Type errors in each printed snippet, compiled together (one program per lib setting), by snippet. */
function typeErrors(lib: string[]): Record<string, string[]> {
  mkdirSync(dir, { recursive: true });
  const files = Object.entries(snippets).map(([name, snippet], i) => {
    const file = join(dir, `dev-snippet-${i}.ts`);
    writeFileSync(file, snippet());
    return { name, file };
  });
  const program = ts.createProgram(files.map((f) => f.file), {
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
  const errors = Object.fromEntries(files.map((f) => [f.name, [] as string[]]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const name = files.find((f) => d.file?.fileName === f.file)?.name ?? 'elsewhere';
    (errors[name] ??= []).push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  return errors;
}

const none = Object.fromEntries(Object.keys(snippets).map((name) => [name, []]));

describe('the options dev prints, for the one-server and the gateway shapes', () => {
  it('type-check without the DOM lib (@types/node alone: json() is Promise<unknown>)', () => {
    expect(typeErrors(['lib.es2022.d.ts'])).toEqual(none);
  });
  it('type-check with the DOM lib', () => {
    expect(typeErrors(['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'])).toEqual(none);
  });
});
