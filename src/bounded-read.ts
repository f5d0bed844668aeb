import { untilAborted } from './abort.js';

/** One read of a byte source: a `ReadableStreamDefaultReader.read()` or an iterator's `next()`. */
export type ChunkRead = Promise<{ done: true; value?: unknown } | { done: false; value: Uint8Array }>;

/** What a capped read brought back. */
export interface CappedRead {
  /** The chunks read, in order; past the cap, the last one is the chunk that crossed it. */
  readonly chunks: Uint8Array[];
  /** Their total length in bytes. */
  readonly size: number;
  /** True when the source ended within the cap; false when reading stopped past it (the source is left unread). */
  readonly complete: boolean;
}

/**
 * Reads chunks until the source ends or more than `maxBytes` have been read: the one loop behind
 * every size cap (token and metadata responses, request bodies kept for a replay). Each read is
 * raced against `signal`, so a source that never ends cannot outlive the caller: on abort,
 * `stop(reason)` is awaited (a caller whose source may never settle returns without waiting) and
 * the signal's reason is thrown.
 */
export async function readCapped(
  read: () => ChunkRead,
  maxBytes: number,
  signal: AbortSignal | null | undefined,
  stop: (reason: unknown) => Promise<unknown> | void,
): Promise<CappedRead> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const next = await untilAborted(read(), signal).catch(async (reason: unknown) => {
      await stop(reason);
      throw reason;
    });
    if (next.done) return { chunks, size, complete: true };
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > maxBytes) return { chunks, size, complete: false };
  }
}

/** The chunks of a complete read as one array. */
export function joinChunks({ chunks, size }: CappedRead): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
