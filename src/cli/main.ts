#!/usr/bin/env node
/**
 * `npx cross-app-access <command>`: `doctor` checks a real setup step by step; `dev` runs local
 * servers to try the package against (loaded only when asked for: it needs optional peers).
 */
import { DOCTOR_USAGE, parseDoctorArgs, UsageError } from './doctor/args.js';
import { renderReport } from './doctor/report.js';
import { runDoctor } from './doctor/run.js';
import { terminalSafeJson } from './doctor/terminal.js';

const USAGE = `Usage: cross-app-access <command>

Commands:
  doctor <mcp-url> [options]   Check an enterprise-managed authorization setup step by step
                               (cross-app-access doctor --help for its options)
  dev [options]                Start a local IdP, authorization server and MCP server to try it
                               (cross-app-access dev --help for its options)
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

async function doctor(argv: string[]): Promise<number> {
  const { config, json, help, idTokenFromStdin } = parseDoctorArgs(argv, process.env);
  if (help) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  if (idTokenFromStdin) config.idToken = (await readStdin()) || undefined;
  const report = await runDoctor(config);
  process.stdout.write(json ? `${terminalSafeJson(report)}\n` : `${renderReport(report, process.stdout.isTTY === true)}\n`);
  return report.ok ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'doctor') return doctor(rest);
  if (command === 'dev') return (await import('./dev/run.js')).runDev(rest);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  throw new UsageError(`Unknown command "${command}".`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
