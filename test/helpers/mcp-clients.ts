/** Real MCP SDK clients (v1 and v2) calling a tool through a given fetch, and concurrency helpers. */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CrossAppAccessFetch } from '../../src/index.js';

/** The text of a tool result. */
export function toolText(result: unknown): string {
  return (result as { content: Array<{ text: string }> }).content.map((c) => c.text).join('');
}

/** One `whoami` call through a new real SDK client (v1, or v2 when `v2`) on `authedFetch`. */
export async function whoamiThrough(url: string, authedFetch: CrossAppAccessFetch, v2: boolean): Promise<string> {
  const client = v2 ? new ClientV2({ name: 'gateway', version: '1.0.0' }) : new Client({ name: 'gateway', version: '1.0.0' });
  const transport = v2 ? new TransportV2(new URL(url), { fetch: authedFetch }) : new StreamableHTTPClientTransport(new URL(url), { fetch: authedFetch });
  await (client as Client).connect(transport as StreamableHTTPClientTransport);
  try {
    return toolText(await client.callTool({ name: 'whoami', arguments: {} }));
  } finally {
    await client.close();
  }
}

/** Runs `run` over `items`, `size` at a time. */
export async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run));
}

/** Shuffles `items` in place with `random` (Fisher–Yates). */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
