import { parseArgs } from 'node:util';
import type { ClientAuthMethod } from '../../oauth/client-auth.js';
import type { DoctorConfig } from './types.js';

const METHODS = new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
// Secrets never come from argv: any user of the machine can read a process's arguments.
const SECRET_FLAGS = ['client-secret', 'idp-client-secret', 'id-token', 'secret', 'token'];

/** Thrown for a usage mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export const DOCTOR_USAGE = `Usage: cross-app-access doctor <mcp-url> [options]

Checks an enterprise-managed authorization setup step by step: the MCP server's 401 and metadata,
its authorization server, the IdP, then (with an ID token) the token exchange, the jwt-bearer grant
and one authenticated MCP request. Each failure ends with the likely fix. Exit code 0 only when
every step passed.

Options:
  --idp-issuer <url>          The IdP's issuer (its metadata is discovered)
  --idp-token-endpoint <url>  Or the IdP's token endpoint
  --idp-client-id <id>        This app's client id at the IdP (the ID token's aud)
  --idp-auth-method <m>       client_secret_basic | client_secret_post | none
  --client-id <id>            This app's client id at the MCP server's authorization server
  --auth-method <m>           client_secret_basic | client_secret_post | none
  --client-issuer <url>       The authorization server the client is registered at (if pinned)
  --resource <url>            The resource as your application configures it
  --scope "<a b>"             Scopes to request
  --id-token-stdin            Read the ID token from standard input
  --timeout <ms>              Per request (default 10000)
  --json                      Machine-readable output
  -h, --help                  This text

Secrets are read from the environment only, never from arguments:
  XAA_IDP_CLIENT_SECRET, XAA_CLIENT_SECRET, XAA_ID_TOKEN (or --id-token-stdin)
`;

function method(value: string | undefined, flag: string): ClientAuthMethod | undefined {
  if (value === undefined) return undefined;
  if (!METHODS.has(value)) throw new UsageError(`--${flag} must be one of ${[...METHODS].join(', ')}.`);
  return value as ClientAuthMethod;
}

/** Parses the doctor's arguments; secrets come from `env` (and the ID token possibly from stdin, read by the caller). */
export function parseDoctorArgs(argv: string[], env: NodeJS.ProcessEnv): { config: DoctorConfig; json: boolean; help: boolean; idTokenFromStdin: boolean } {
  const secretFlag = argv.find((a) => SECRET_FLAGS.some((f) => a === `--${f}` || a.startsWith(`--${f}=`)));
  if (secretFlag) throw new UsageError(`${secretFlag.split('=')[0]} is not accepted: secrets are read from XAA_IDP_CLIENT_SECRET, XAA_CLIENT_SECRET and XAA_ID_TOKEN (or --id-token-stdin), never from arguments, which other users of the machine can see.`);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'idp-issuer': { type: 'string' },
      'idp-token-endpoint': { type: 'string' },
      'idp-client-id': { type: 'string' },
      'idp-auth-method': { type: 'string' },
      'client-id': { type: 'string' },
      'auth-method': { type: 'string' },
      'client-issuer': { type: 'string' },
      resource: { type: 'string' },
      scope: { type: 'string' },
      'id-token-stdin': { type: 'boolean' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const help = values.help === true;
  const mcpUrl = positionals[0];
  if (!help && (mcpUrl === undefined || positionals.length > 1)) throw new UsageError('Give exactly one MCP server URL.');
  if (!help && values['idp-issuer'] === undefined && values['idp-token-endpoint'] === undefined) throw new UsageError('Give --idp-issuer or --idp-token-endpoint.');
  const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) throw new UsageError('--timeout is in milliseconds, at least 100.');
  const config: DoctorConfig = {
    mcpUrl: mcpUrl ?? '',
    idpIssuer: values['idp-issuer'],
    idpTokenEndpoint: values['idp-token-endpoint'],
    idpClientId: values['idp-client-id'],
    idpClientSecret: env.XAA_IDP_CLIENT_SECRET || undefined,
    idpAuthMethod: method(values['idp-auth-method'], 'idp-auth-method'),
    clientId: values['client-id'],
    clientSecret: env.XAA_CLIENT_SECRET || undefined,
    authMethod: method(values['auth-method'], 'auth-method'),
    clientIssuer: values['client-issuer'],
    resource: values.resource,
    scope: values.scope,
    idToken: env.XAA_ID_TOKEN || undefined,
    timeoutMs,
  };
  return { config, json: values.json === true, help, idTokenFromStdin: values['id-token-stdin'] === true };
}
