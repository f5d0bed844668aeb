/**
 * Before the test processes start: a temp directory and a throwaway CA. NODE_EXTRA_CA_CERTS is read
 * by Node only at start-up, so it is set here, in the parent, and the forked test processes (and the
 * wrangler/workerd they start) inherit it: Node's fetch and workerd's then trust the IdP's https.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endProcessGroups } from './harness.js';
import { makeThrowawayTls } from './tls.js';

export default function setup(): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xaa-interop-'));
  const tls = makeThrowawayTls(dir);
  process.env.NODE_EXTRA_CA_CERTS = tls.caFile;
  process.env.XAA_INTEROP_DIR = dir;
  return async () => {
    // A wrangler left running (a test process killed before its afterAll) is ended here.
    const left = await endProcessGroups(dir);
    if (left > 0) console.warn(`interop teardown: ended ${left} wrangler process group(s) left running`);
    rmSync(dir, { recursive: true, force: true });
  };
}
