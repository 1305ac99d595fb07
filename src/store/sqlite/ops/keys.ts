import type { Database } from 'better-sqlite3';
import type { ApiKeyRow } from '../../port.js';
import { keyFromRow } from '../../sql/columns.js';

export function keyOps(db: Database) {
  const insert = db.prepare(
    `INSERT INTO api_keys (id, tenant_id, hash, prefix, name, source, created_at, revoked_at)
     VALUES (@id, @tenantId, @hash, @prefix, @name, @source, @createdAt, @revokedAt)
     ON CONFLICT (hash) DO UPDATE SET revoked_at = NULL WHERE excluded.source = 'env'`,
  );
  const byHash = db.prepare(`SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL`);
  const all = db.prepare(`SELECT * FROM api_keys ORDER BY created_at, id`);
  const revoke = db.prepare(
    `UPDATE api_keys SET revoked_at = @now
     WHERE revoked_at IS NULL AND (id = @key OR prefix = @key)`,
  );
  return {
    insertKey(key: ApiKeyRow): void {
      insert.run(key);
    },
    findKeyByHash(hash: string): ApiKeyRow | undefined {
      const row = byHash.get(hash) as Record<string, unknown> | undefined;
      return row && keyFromRow(row);
    },
    listKeys(): ApiKeyRow[] {
      return (all.all() as Record<string, unknown>[]).map(keyFromRow);
    },
    revokeKey(key: string, now: number): number {
      return revoke.run({ key, now }).changes;
    },
  };
}
