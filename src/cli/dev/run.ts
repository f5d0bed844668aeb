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
  const [{ startDevServers }, { formatRequest }, { renderDevBanner }, { startDevGateway }, { renderDevGatewayBanner }] = await Promise.all([
    import('./start.js'),
    import('./log.js'),
    import('./banner.js'),
    import('./gateway.js'),
    import('./gateway-banner.js'),
  ]);
  const gatewayShape = args.idps > 1 || args.servers > 1;
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
  const onRequest = args.quiet ? {} : { onRequest: (name: string, entry: Parameters<typeof formatRequest>[1]) => io.stdout.write(`${formatRequest(name, entry)}\n`) };
  let servers: { close(): Promise<void> };
  try {
    if (gatewayShape) {
      const gateway = await startDevGateway({ idps: args.idps, servers: args.servers, port: args.port, ...onRequest });
      servers = gateway;
      io.stdout.write(renderDevGatewayBanner(gateway.config));
    } else {
      const one = await startDevServers({ port: args.port, clientSecret: args.clientSecret, ...onRequest });
      servers = one;
      io.stdout.write(renderDevBanner(one.config, args.user, await one.idp.mintIdToken({ sub: args.user })));
    }
  } catch (error) {
    removeHandlers();
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    const ports = gatewayShape ? `A port from ${args.port} to ${args.port + args.idps + 2 * args.servers - 1}` : `Port ${args.port}, ${args.port + 1} or ${args.port + 2}`;
    io.stderr.write(`${ports} is in use: choose another --port, or --port 0 for free ones.\n`);
    return 1;
  }
  const signal = await stopSignal;
  io.stdout.write(`\n${signal}: stopping\n`);
  await servers.close();
  io.stdout.write('stopped\n');
  return 0;
}
