/**
 * A protected resource on loopback that misbehaves on request, for the undici interceptor's
 * composition tests: it verifies bearers with the test authorization server and answers what the
 * query asks (`status`, `location`, `loop` for a Location to itself, `cc` for Cache-Control, `late` for a body held back until the client opens the gate named in the head's `x-late`,
 * `gate` to wait for the test, `fail`/`reset` for the first N requests of a `key`). Every request is
 * recorded with the user its token was for and the Host it arrived with.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthorizationServer } from '../servers/authorization-server.js';

export interface SeenRequest {
  path: string;
  /** The user the request's token was for; undefined without a valid token. */
  sub: string | undefined;
  host: string | undefined;
}

/** A gate the server's answers wait on, and how many requests have arrived at it. */
export interface Gate {
  open(): void;
  /** Resolves once `n` requests are waiting at the gate. */
  arrived(n: number): Promise<void>;
}

export interface MisbehavingResource {
  readonly origin: string;
  /** The resource identifier (`origin` + `/mcp`). */
  readonly resource: string;
  readonly seen: SeenRequest[];
  gate(name: string): Gate;
  close(): Promise<void>;
}

interface GateState extends Gate {
  readonly opened: Promise<void>;
  /** A request arrived: counted, and whoever waits for that many hears it. */
  arrive(): void;
}

function makeGate(): GateState {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let waiting = 0;
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    opened,
    open,
    arrive() {
      waiting++;
      const ready = waiters.filter((w) => waiting >= w.n);
      waiters = waiters.filter((w) => waiting < w.n);
      for (const w of ready) w.resolve();
    },
    arrived(n) {
      if (waiting >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
  };
}

export async function startMisbehavingResource(as: AuthorizationServer): Promise<MisbehavingResource> {
  const seen: SeenRequest[] = [];
  const gates = new Map<string, GateState>();
  const counts = new Map<string, number>();
  let lateBodies = 0;
  const gateOf = (name: string) => {
    let gate = gates.get(name);
    if (!gate) gates.set(name, (gate = makeGate()));
    return gate;
  };
  let resource = '';

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const auth = req.headers.authorization;
    const info = auth?.startsWith('Bearer ') ? as.verifyAccessToken(auth.slice(7)) : undefined;
    // The same server also stands for the resource under `localhost` (for the dns interceptor).
    const sub = info && (info.resource === resource || info.resource === resource.replace('127.0.0.1', 'localhost')) ? info.sub : undefined;
    seen.push({ path: url.pathname + url.search, sub, host: req.headers.host });
    for await (const _ of req) void _;
    if (url.pathname.startsWith('/mcp') && sub === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end('unauthorized');
      return;
    }
    const key = q.get('key') ?? url.pathname;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (n <= Number(q.get('reset') ?? 0)) {
      req.socket.destroy();
      return;
    }
    const gateName = q.get('gate');
    if (gateName) {
      const gate = gateOf(gateName);
      gate.arrive();
      await gate.opened;
    }
    const failing = n <= Number(q.get('fail') ?? 0);
    const status = failing ? 503 : Number(q.get('status') ?? 200);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (q.get('location') !== null) headers.location = q.get('location')!;
    if (q.get('loop') !== null) headers.location = req.url ?? '/';
    if (q.get('cc') !== null) headers['cache-control'] = q.get('cc')!;
    const body = JSON.stringify({ sub, host: req.headers.host, path: url.pathname, n });
    if (q.get('late') === null) {
      res.writeHead(status, headers).end(body);
      return;
    }
    // The head now, the body once the client has handled the head (it opens the gate named in
    // `x-late`): the end of the response then arrives in a socket callback of its own.
    const late = `late-${++lateBodies}`;
    res.writeHead(status, { ...headers, 'x-late': late });
    res.flushHeaders();
    await gateOf(late).opened;
    res.end(body);
  }

  const server = createServer((req, res) => {
    answer(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  resource = `${origin}/mcp`;
  return {
    origin,
    resource,
    seen,
    gate: gateOf,
    close: () =>
      new Promise<void>((resolve) => {
        for (const gate of gates.values()) gate.open();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
