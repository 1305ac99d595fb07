import type { Store } from '../store/port.js';
import { hashKey } from './keys.js';

/**
 * Resolves keys (the tokens clients send, however they carry them: `http/credentials.ts`) to tenants with a short-lived memory cache in front of the store, so the
 * query path does not hash and look up the key on every request.
 * - Only keys that exist are cached (random tokens cannot fill the memory).
 * - A revoked key stops working within `ttlMs` (default 1000 ms) in every process.
 * - Requests that miss at once share one lookup of their key.
 */
export class KeyCache {
  private readonly hits = new Map<string, { tenantId: string; until: number }>();
  /** Lookups out, by token: one per key at a time. */
  private readonly lookups = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly store: Store,
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The tenant of a key seen within the last `ttlMs`, without touching the store; else undefined. */
  cachedTenant(token: string | undefined): string | undefined {
    const hit = token === undefined ? undefined : this.hits.get(token);
    return hit && hit.until > Date.now() ? hit.tenantId : undefined;
  }

  async tenantOf(token: string | undefined): Promise<string | undefined> {
    if (token === undefined) return undefined;
    const now = Date.now();
    const hit = this.hits.get(token);
    if (hit && hit.until > now) return hit.tenantId;
    // The requests that find a key's entry ended while its lookup is out wait for that lookup.
    let lookup = this.lookups.get(token);
    if (!lookup) {
      lookup = this.lookup(token, now).finally(() => this.lookups.delete(token));
      this.lookups.set(token, lookup);
    }
    return lookup;
  }

  private async lookup(token: string, now: number): Promise<string | undefined> {
    const found = await this.store.findKeyByHash(hashKey(token));
    if (!found) {
      this.hits.delete(token);
      return undefined;
    }
    if (this.hits.size >= this.maxEntries) this.hits.clear();
    this.hits.set(token, { tenantId: found.tenantId, until: now + this.ttlMs });
    return found.tenantId;
  }
}
