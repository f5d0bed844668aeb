/**
 * `dev`'s optional peer dependencies, checked before anything imports them: the library and
 * `doctor` never load them.
 */

/** The packages `dev` loads, with one module of each to try. */
const DEV_DEPENDENCIES: readonly (readonly [name: string, load: () => Promise<unknown>])[] = [
  ['@modelcontextprotocol/sdk', () => import('@modelcontextprotocol/sdk/server/mcp.js')],
  ['jose', () => import('jose')],
  ['zod', () => import('zod')],
];

/** The names of `dev`'s dependencies that cannot be loaded from here. */
export async function missingDevDependencies(): Promise<string[]> {
  const missing: string[] = [];
  for (const [name, load] of DEV_DEPENDENCIES) {
    try {
      await load();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
      missing.push(name);
    }
  }
  return missing;
}

/** What to tell a user missing some of them. */
export function missingDependenciesMessage(missing: string[]): string {
  return `cross-app-access dev needs ${missing.join(' and ')} (optional peer dependencies of cross-app-access, for dev only):
  npm i -D ${missing.join(' ')}
`;
}
