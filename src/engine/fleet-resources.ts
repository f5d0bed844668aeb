import { LRUCache } from 'lru-cache';
import { checkResource, isProtectedResourceMetadata, METADATA_TTL_MS, type ProtectedResourceMetadata, type SharedDocuments } from '../oauth/discovery.js';
import { isInside } from '../url-rules.js';
import type { ResourceBinding } from './binding.js';
import type { Target } from './engine.js';
import type { ResourceRegistry } from './resources.js';

/** Learned resources kept per origin in the fleet's store; the oldest beyond this are dropped. */
const MAX_PER_ORIGIN = 32;
/** Origins whose fleet record this process remembers (read once each per metadata lifetime). */
const MAX_ORIGINS = 256;

/** One learned resource as the fleet keeps it: its validated metadata and the challenge's scope. */
interface LearnedEntry {
  readonly prm: ProtectedResourceMetadata;
  readonly scope: string | undefined;
}

/**
 * Resources learned from 401s (RFC 9728 §5.1: no `resource` configured), shared by a fleet through
 * its store, so a fresh process binds a target another process learned without the unauthenticated
 * probe and without fetching metadata. Kept per origin under `learned <origin>`, for the hour
 * metadata is kept, sealed by the store like every discovery result: a record altered in the store
 * does not open, and the target is learned as usual. A record is used only for a target its
 * resource covers (RFC 9728 §3.3, checked again here), and only through the registry, which still
 * applies this client's registrations (RFC 9728 §7.6).
 */
export class FleetResources {
  /** Origin → the fleet's record as read (or written) here, so each origin costs one store read. */
  private readonly origins = new LRUCache<string, { entries: Promise<LearnedEntry[]>; expiresAt: number }>({ max: MAX_ORIGINS });

  constructor(
    private readonly shared: SharedDocuments,
    private readonly registry: ResourceRegistry,
    private readonly now: () => number,
  ) {}

  /** The binding another process learned for `target`; undefined when none (or it does not hold). */
  async bindingFor(target: Target): Promise<ResourceBinding | undefined> {
    const entries = await this.entries(target.origin);
    // The most specific resource that covers the target (RFC 8707 §2), as the registry picks.
    let best: { entry: LearnedEntry; length: number } | undefined;
    for (const entry of entries) {
      let url: URL;
      try {
        url = new URL(entry.prm.resource);
        checkResource(entry.prm.resource, target.url, undefined, 'the fleet\'s store');
      } catch {
        continue;
      }
      if (!best || url.pathname.length > best.length) best = { entry, length: url.pathname.length };
    }
    if (!best) return undefined;
    try {
      const binding = await this.registry.fromMetadata(best.entry.prm, best.entry.scope);
      return isInside(target.origin, target.path, binding.boundary) ? binding : undefined;
    } catch {
      // Its authorization server is not usable here (not registered, metadata gone): learned as usual.
      return undefined;
    }
  }

  /** A resource learned here: shared with the fleet (replacing an older entry for the same resource). */
  remember(target: Target, prm: ProtectedResourceMetadata, scope: string | undefined): void {
    const origin = target.origin;
    void this.entries(origin).then((entries) => {
      const next = [{ prm, scope }, ...entries.filter((e) => e.prm.resource !== prm.resource)].slice(0, MAX_PER_ORIGIN);
      this.origins.set(origin, { entries: Promise.resolve(next), expiresAt: this.now() + METADATA_TTL_MS });
      this.shared.write(recordName(origin), { resources: next }, METADATA_TTL_MS);
    });
  }

  /** The fleet's record for `origin`: read once, then kept for its remaining life. */
  private entries(origin: string): Promise<LearnedEntry[]> {
    const known = this.origins.get(origin);
    if (known && known.expiresAt > this.now()) return known.entries;
    const slot = { entries: Promise.resolve<LearnedEntry[]>([]), expiresAt: this.now() + METADATA_TTL_MS };
    slot.entries = this.shared.read(recordName(origin)).then(
      (found) => {
        if (!found || found.remainingMs <= 0) return [];
        slot.expiresAt = Math.min(slot.expiresAt, this.now() + found.remainingMs);
        return learnedEntries(found.value);
      },
      () => [],
    );
    this.origins.set(origin, slot);
    return slot.entries;
  }
}

function recordName(origin: string): string {
  return `learned ${origin}`;
}

/** The entries of a record another process kept, each checked for shape. */
function learnedEntries(value: unknown): LearnedEntry[] {
  const resources = (value as { resources?: unknown } | null)?.resources;
  if (!Array.isArray(resources)) return [];
  return resources.filter((e): e is LearnedEntry => typeof e === 'object' && e !== null && isProtectedResourceMetadata(e.prm) && (e.scope === undefined || typeof e.scope === 'string'));
}
