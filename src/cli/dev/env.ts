/**
 * The environment variables `cross-app-access dev` prints, read by `examples/` and by `doctor`.
 */
import type { DevConfig } from './start.js';

/**
 * `XAA_*` variables for a dev config: the MCP URL, the IdP, both client registrations, and (when
 * given) an ID token. `XAA_CLIENT_SECRET` and `XAA_ID_TOKEN` are the names `doctor` reads.
 */
export function devEnvironment(config: DevConfig, idToken?: string): Record<string, string> {
  return {
    XAA_MCP_URL: config.mcpUrl,
    XAA_IDP_ISSUER: config.idpIssuer,
    XAA_IDP_CLIENT_ID: config.idpClientId,
    XAA_ID_TOKEN_URL: config.idTokenUrl,
    XAA_AS_ISSUER: config.asIssuer,
    XAA_CLIENT_ID: config.clientId,
    XAA_CLIENT_SECRET: config.clientSecret,
    ...(idToken === undefined ? {} : { XAA_ID_TOKEN: idToken }),
  };
}

/** POSIX shell single-quoting. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines, ready to paste into a shell. */
export function renderExports(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => `export ${name}=${shellQuote(value)}`)
    .join('\n');
}

/** Reads `export NAME='value'` lines back (the dev tests and anyone scripting `dev`). */
export function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^export (XAA_[A-Z_]+)='((?:[^']|'\\'')*)'$/gm)) env[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  return env;
}
