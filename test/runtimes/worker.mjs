/**
 * Entry for workerd (under `wrangler dev`): a Worker whose `POST /run`, with the servers' addresses
 * as its JSON body, runs the flow tests inside the Worker and answers their results. The package is
 * bundled by wrangler from the installed tarball, without `nodejs_compat`.
 */
import * as lib from 'cross-app-access';
import { runFlowTests } from './flow.mjs';

export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (request.method === 'GET' && pathname === '/ready') return new Response('ready');
    if (request.method !== 'POST' || pathname !== '/run') return new Response('not found', { status: 404 });
    return Response.json(await runFlowTests(lib, await request.json()));
  },
};
