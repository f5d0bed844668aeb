/**
 * `cross-app-access dev` options (Node's own `util.parseArgs`).
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../doctor/args.js';

export const DEV_USAGE = `Usage: cross-app-access dev [options]

Starts a local IdP, authorization server and MCP server (tools: whoami, echo) on 127.0.0.1, prints
the options to paste into your code (and the same as environment variables, with an ID token), and
logs each request they receive (tokens as fingerprints, secrets never). Ctrl-C stops them.

Options:
  --port <n>     IdP on n, authorization server on n+1, MCP server on n+2 (default 0: free ports)
  --user <sub>   The user of the printed ID token (default alice)
  --quiet        Do not log requests
  -h, --help     This text

Needs the optional peer dependencies jose and @modelcontextprotocol/sdk:
  npm i -D @modelcontextprotocol/sdk jose
The AS client's secret is random on each start, or $XAA_DEV_CLIENT_SECRET when set.
`;

/** Parsed `dev` options. */
export interface DevArgs {
  port: number;
  user: string;
  quiet: boolean;
  help: boolean;
  clientSecret: string | undefined;
}

/** Parses `dev`'s argv; throws {@link UsageError} on a bad value. */
export function parseDevArgs(argv: string[], env: NodeJS.ProcessEnv): DevArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      user: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`dev takes no arguments (got "${positionals[0]}").`);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65533) throw new UsageError('--port must be an integer from 0 to 65533.');
  const user = values.user ?? 'alice';
  if (user === '' || user.length > 256) throw new UsageError('--user must be 1 to 256 characters.');
  return { port, user, quiet: values.quiet === true, help: values.help === true, clientSecret: env.XAA_DEV_CLIENT_SECRET || undefined };
}
