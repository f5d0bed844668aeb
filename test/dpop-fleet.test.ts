/**
 * A fleet sharing DPoP-bound tokens through a real `redis-server` (RFC 9449 with a shared store):
 * members configured with the same key use one another's token, each with proofs of its own that the
 * MCP server verifies; a member with another key never takes (or sends) a token bound to the first.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useRedisFleet } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';

const redisFleet = useRedisFleet();

describe.skipIf(skipRedis)('DPoP in a fleet sharing a Redis store', () => {
  it('the second engine uses the first one\'s DPoP token, with its own valid proofs; an engine with another key gets its own token', async () => {
    const { stack } = redisFleet;
    const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const first = await redisFleet.member({ engine: { dpop: { privateKey } } });
    const second = await redisFleet.member({ engine: { dpop: { privateKey } } });

    expect(await first.call()).toBe(200);
    expect(await second.call()).toBe(200);
    expect(stack.as.counters.grant).toBe(1);
    expect(second.acquisitions()).toBe(0);
    expect(second.events.some((e) => e.type === 'token_shared')).toBe(true);

    const tokened = stack.mcp.requests.filter((r) => r.authorization !== undefined);
    expect(tokened).toHaveLength(2);
    expect(tokened.every((r) => r.authorization!.startsWith('DPoP '))).toBe(true);
    expect(new Set(tokened.map((r) => r.authorization)).size).toBe(1);
    const proofs = stack.mcp.dpop.proofs;
    expect(proofs).toHaveLength(2);
    expect(proofs[0]!.jkt).toBe(proofs[1]!.jkt);
    expect(proofs[0]!.claims.jti).not.toBe(proofs[1]!.claims.jti);

    // Another key (dpop: true makes one per engine): a token of its own, never the first key's.
    const other = await redisFleet.member({ engine: { dpop: true } });
    expect(await other.call()).toBe(200);
    expect(stack.as.counters.grant).toBe(2);
    const last = stack.mcp.requests.filter((r) => r.authorization !== undefined).at(-1)!;
    expect(last.authorization).not.toBe(tokened[0]!.authorization);
    expect(stack.mcp.dpop.proofs.at(-1)!.jkt).not.toBe(proofs[0]!.jkt);
    expect([...first.diagnostics(), ...second.diagnostics(), ...other.diagnostics()]).toEqual([]);
  });
});
