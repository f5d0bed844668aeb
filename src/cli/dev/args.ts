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
  --port <n>     IdP on n, authorization server on n+1, MCP server on n+2 (default 0: free ports);
                 with --idps/--servers, the IdPs from n, then the authorization servers, then the MCP servers
  --user <sub>   The user of the printed ID token (default alice)
  --idps <n>     A whole gateway's shape: n IdPs (one per enterprise; default 1, at most 9)...
  --servers <m>  ...and m MCP servers, each behind its own authorization server with its own
                 registration of the gateway (default 1, at most 9); prints one engine's options with lists
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
  /** IdPs and MCP servers: both 1 is the one-server shape. */
  idps: number;
  servers: number;
}

/** Parses `dev`'s argv; throws {@link UsageError} on a bad value. */
export function parseDevArgs(argv: string[], env: NodeJS.ProcessEnv): DevArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      user: { type: 'string' },
      quiet: { type: 'boolean' },
      idps: { type: 'string' },
      servers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`dev takes no arguments (got "${positionals[0]}").`);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65533) throw new UsageError('--port must be an integer from 0 to 65533.');
  const user = values.user ?? 'alice';
  if (user === '' || user.length > 256) throw new UsageError('--user must be 1 to 256 characters.');
  const count = (value: string | undefined, name: string) => {
    const n = value === undefined ? 1 : Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError(`--${name} must be an integer from 1 to 9.`);
    return n;
  };
  const idps = count(values.idps, 'idps');
  const servers = count(values.servers, 'servers');
  return { port, user, quiet: values.quiet === true, help: values.help === true, clientSecret: env.XAA_DEV_CLIENT_SECRET || undefined, idps, servers };
}
