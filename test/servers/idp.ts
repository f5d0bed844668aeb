// The dev IdP (src/cli/dev/servers/idp.ts, shipped for `cross-app-access dev`) with the tests' fault
// injection: `override` (a canned reply instead of the IdP's own) and `leaks()`.
import { startIdp as startDevIdp, type Idp as DevIdp, type IdpOptions } from '../../src/cli/dev/servers/idp.js';
import { leaksOf, type OverrideHook } from './http-util.js';

export * from '../../src/cli/dev/servers/idp.js';

export interface Idp extends DevIdp {
  /** Fault injection: a returned reply is sent instead of the normal one (counters still count). */
  override: OverrideHook | undefined;
  /** Header names that must never arrive (cookie, MCP headers, bearer), over all requests. */
  leaks(): string[];
}

export async function startIdp(options: Omit<IdpOptions, 'answerFirst'> = {}): Promise<Idp> {
  let faulty: Idp | undefined;
  const idp = await startDevIdp({ ...options, answerFirst: (req) => faulty?.override?.(req) });
  faulty = Object.assign(idp, { override: undefined as OverrideHook | undefined, leaks: () => leaksOf(idp) });
  return faulty;
}
