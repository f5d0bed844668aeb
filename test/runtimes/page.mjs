/**
 * Entry for the browser page: bundled by esbuild (platform `browser`) from the installed tarball and
 * loaded by page.html; the runner calls `runFlowTests(config)` in the page and reads the results.
 */
import * as lib from 'cross-app-access';
import { runFlowTests } from './flow.mjs';

globalThis.runFlowTests = (config) => runFlowTests(lib, config);
