/**
 * For the doctor's tests: real loopback stacks (closed after each test), a config that works against
 * one, a step by id, the CLI as a child process, and a port nobody listens on.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { DoctorConfig, DoctorReport, StepResult } from '../../src/cli/doctor/types.js';
import { DEFAULT_AS_CLIENT, startStack, type Stack, type StackOptions } from '../servers/stack.js';

const stacks: Stack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.close()));
});

export async function stackWith(options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack(options);
  stacks.push(stack);
  return stack;
}

export async function configFor(stack: Stack, overrides: Partial<DoctorConfig> = {}): Promise<DoctorConfig> {
  return {
    mcpUrl: stack.mcp.url,
    idpIssuer: stack.idp.issuer,
    idpClientId: stack.idp.clientId,
    clientId: DEFAULT_AS_CLIENT.clientId,
    clientSecret: DEFAULT_AS_CLIENT.clientSecret,
    idToken: await stack.idp.mintIdToken(),
    timeoutMs: 5_000,
    ...overrides,
  };
}

export function step(report: DoctorReport, id: string): StepResult {
  const found = report.steps.find((s) => s.id === id);
  if (!found) throw new Error(`no step ${id} in ${report.steps.map((s) => s.id).join(', ')}`);
  return found;
}

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** `cross-app-access doctor …` as a user runs it (stdout not a terminal, so no colour). */
export function cli(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** A loopback port that was free a moment ago and that nobody listens on now. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
