/**
 * Entry for the runtimes that run a script (Node, Bun, Deno): imports the installed package by its
 * name, like a user's program, runs the flow tests against the servers named in XAA_FLOW_CONFIG and
 * prints one `XAA-FLOW-RESULTS <json>` line for scripts/runtimes/.
 */
import * as lib from 'cross-app-access';
import { runFlowTests } from './flow.mjs';

const env = globalThis.Deno ? globalThis.Deno.env.get('XAA_FLOW_CONFIG') : globalThis.process.env.XAA_FLOW_CONFIG;
if (!env) throw new Error('XAA_FLOW_CONFIG is not set: run through `npm run test:runtimes`');
const results = await runFlowTests(lib, JSON.parse(env));
console.log(`XAA-FLOW-RESULTS ${JSON.stringify(results)}`);
