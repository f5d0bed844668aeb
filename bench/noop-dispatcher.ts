/**
 * The smallest real dispatcher: it answers every request at once, synchronously, in undici's core
 * handler API (what `Agent` speaks beneath `compose`), with `200` and a 2-byte body. No matching, no
 * copies, nothing kept: measured on it, a composed interceptor's own cost is not mixed with
 * `MockAgent`'s (which parses, matches and copies every request's options and headers).
 */
import { Dispatcher } from 'undici';

const RAW_HEADERS = [Buffer.from('content-length'), Buffer.from('2')];
const BODY = Buffer.from('ok');
const ignore = (): void => undefined;

interface CoreHandler {
  onConnect?(abort: (reason?: Error) => void, context?: unknown): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | null): void;
}

export class NoopDispatcher extends Dispatcher {
  override dispatch(_opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // What `undici.request` hands a dispatcher (and what our interceptor relays) is a core-API handler.
    const core = handler as CoreHandler;
    if (typeof core.onHeaders !== 'function') throw new Error('NoopDispatcher answers core-API handlers only');
    core.onConnect?.(ignore);
    core.onHeaders(200, RAW_HEADERS, ignore, 'OK');
    core.onData?.(BODY);
    core.onComplete?.([]);
    return true;
  }

  override async close(): Promise<void> {}

  override async destroy(): Promise<void> {}
}
