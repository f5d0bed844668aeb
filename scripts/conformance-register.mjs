// Preload for the @modelcontextprotocol/conformance CLI on Node 20:
//   node --import ./scripts/conformance-register.mjs node_modules/conformance-0-1/dist/index.js …
//
// Registers a module-resolution hook (node:module register(), runs on the loader thread) that
// sends `fs` / `node:fs` imports coming FROM the conformance bundle to conformance-fs-shim.mjs,
// which adds the `globSync` export Node 20 lacks. Every other import, including `fs` from any
// other module (the shim itself, express, the MCP SDK…), goes to the default resolver untouched.
// Nothing in node_modules is patched, and the hook lives only in this process: the runner starts
// the client with `sh -c`, which does not inherit --import (it is not in NODE_OPTIONS).
import { register } from 'node:module';

const shimUrl = new URL('./conformance-fs-shim.mjs', import.meta.url).href;

// The hook module is inlined as a data: URL so it needs no file of its own. It has no imports
// (a data: module cannot resolve relative specifiers); it gets the shim URL through `initialize`.
const hooks = `
let shimUrl;
const MARKERS = ['/conformance-0-1/', '/conformance-0-2/', '/@modelcontextprotocol/conformance/'];

export function initialize(data) {
  shimUrl = data.shimUrl;
}

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? '';
  if ((specifier === 'fs' || specifier === 'node:fs') && MARKERS.some((m) => parent.includes(m))) {
    return { url: shimUrl, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
`;

register('data:text/javascript,' + encodeURIComponent(hooks), {
  parentURL: import.meta.url,
  data: { shimUrl },
});
