/**
 * `cross-app-access dev`: checks its optional dependencies, starts the dev servers, prints how to
 * use them, logs requests, and stops cleanly on SIGINT or SIGTERM. Loaded lazily by the CLI.
 */
import { DEV_USAGE, parseDevArgs } from './args.js';
import { missingDependenciesMessage, missingDevDependencies } from './deps.js';

/** Where `dev` writes (the process's streams, or a test's). */
export interface DevIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Runs `dev` until SIGINT or SIGTERM; resolves with the exit code. */
export async function runDev(argv: string[], env: NodeJS.ProcessEnv = process.env, io: DevIo = process): Promise<number> {
  const args = parseDevArgs(argv, env);
  if (args.help) {
    io.stdout.write(DEV_USAGE);
    return 0;
  }
  const missing = await missingDevDependencies();
  if (missing.length > 0) {
    io.stderr.write(missingDependenciesMessage(missing));
    return 2;
  }
  // Only now: these import jose and the MCP SDK.
  const [{ startDevServers }, { formatRequest }, { renderDevBanner }] = await Promise.all([
    import('./start.js'),
    import('./log.js'),
    import('./banner.js'),
  ]);
  // Listening before anything is printed: a signal right after the banner must not find the default action.
  let removeHandlers = () => {};
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals) => {
      removeHandlers();
      resolve(s);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    removeHandlers = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
  });
  let servers;
  try {
    servers = await startDevServers({
      port: args.port,
      clientSecret: args.clientSecret,
      ...(args.quiet ? {} : { onRequest: (name, entry) => io.stdout.write(`${formatRequest(name, entry)}\n`) }),
    });
  } catch (error) {
    removeHandlers();
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    io.stderr.write(`Port ${args.port}, ${args.port + 1} or ${args.port + 2} is in use: choose another --port, or --port 0 for free ones.\n`);
    return 1;
  }
  io.stdout.write(renderDevBanner(servers.config, args.user, await servers.idp.mintIdToken({ sub: args.user })));
  const signal = await stopSignal;
  io.stdout.write(`\n${signal}: stopping\n`);
  await servers.close();
  io.stdout.write('stopped\n');
  return 0;
}
