// Stand-in for `fs`, served only to the @modelcontextprotocol/conformance CLI bundle by the
// resolve hook in conformance-register.mjs.
//
// Why: the CLI statically imports `globSync` from 'fs'. fs.globSync exists only from Node 22,
// so on Node 20 the whole CLI fails at link time ("does not provide an export named
// 'globSync'"), even though only its `tier-check` subcommand ever calls it. We re-export the
// real module unchanged and add a `globSync` that fails loudly if it is ever actually used.
import fs from 'node:fs';

export * from 'node:fs';
export default fs;

export const globSync =
  typeof fs.globSync === 'function'
    ? fs.globSync // Node >= 22: hand through the real one
    : function globSync() {
        throw new Error(
          'fs.globSync is not available on Node ' +
            process.versions.node +
            ' (added in Node 22). The conformance shim only makes the CLI load; ' +
            'the subcommand that needs globSync (tier-check) requires Node >= 22.',
        );
      };
