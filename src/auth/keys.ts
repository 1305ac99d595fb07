import { createHash, randomBytes } from 'node:crypto';
import { alnum } from '../core/ids.js';
import type { ApiKeyRow, Store } from '../store/port.js';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A new bearer key: `sk-` and 48 letters and digits (~285 bits). */
export function newKey(): string {
  return `sk-${alnum(48)}`;
}

function row(key: string, source: ApiKeyRow['source'], name: string, now: number): ApiKeyRow {
  const hash = hashKey(key);
  return {
    // Keys from the environment get a tenant derived from the key, so it is the same on every start.
    id: source === 'env' ? `key_${hash.slice(0, 12)}` : `key_${randomBytes(6).toString('hex')}`,
    tenantId: source === 'env' ? `t_${hash.slice(0, 16)}` : `t_${randomBytes(8).toString('hex')}`,
    hash,
    prefix: key.slice(0, 10),
    name,
    source,
    createdAt: now,
    revokedAt: null,
  };
}

/** Creates and stores a key; returns the key in clear (the only time it exists in clear). */
export async function createKey(store: Store, name = '', source: ApiKeyRow['source'] = 'cli'): Promise<{ key: string; row: ApiKeyRow }> {
  const key = newKey();
  const r = row(key, source, name, Date.now());
  await store.insertKey(r);
  return { key, row: r };
}

/**
 * Start-up key handling: every key in `REELAY_API_KEYS` is stored (hashed) and live; env keys no
 * longer listed are revoked. When no live key exists at all, one is created and returned so the
 * caller can print it once.
 */
export async function ensureKeys(store: Store, envKeys: string[]): Promise<string | undefined> {
  const now = Date.now();
  const wanted = new Set(envKeys.map(hashKey));
  for (const key of envKeys) await store.insertKey(row(key, 'env', 'from REELAY_API_KEYS', now));
  for (const k of await store.listKeys()) {
    if (k.source === 'env' && !k.revokedAt && !wanted.has(k.hash)) await store.revokeKey(k.id, now);
  }
  const live = (await store.listKeys()).filter((k) => !k.revokedAt);
  if (live.length > 0) return undefined;
  const { key } = await createKey(store, 'first key', 'auto');
  return key;
}
