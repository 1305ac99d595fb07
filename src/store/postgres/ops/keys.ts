import type { ApiKeyRow } from '../../port.js';
import type { Db } from '../db.js';
import { keyFromRow } from '../../sql/columns.js';

export function keyOps(db: Db) {
  return {
    async insertKey(k: ApiKeyRow): Promise<void> {
      // A key the configuration lists (`env`) is live again when it was revoked; others stay as they are.
      await db.query(
        'reelay_key_insert',
        `INSERT INTO api_keys (id, tenant_id, hash, prefix, name, source, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (hash) DO UPDATE SET revoked_at = NULL WHERE excluded.source = 'env'`,
        [k.id, k.tenantId, k.hash, k.prefix, k.name, k.source, k.createdAt, k.revokedAt],
      );
    },
    async findKeyByHash(hash: string): Promise<ApiKeyRow | undefined> {
      const { rows } = await db.query('reelay_key_by_hash', `SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, [hash]);
      return rows[0] && keyFromRow(rows[0]);
    },
    async listKeys(): Promise<ApiKeyRow[]> {
      const { rows } = await db.query('reelay_key_list', `SELECT * FROM api_keys ORDER BY created_at, id`);
      return rows.map(keyFromRow);
    },
    async revokeKey(key: string, now: number): Promise<number> {
      const r = await db.query(
        'reelay_key_revoke',
        `UPDATE api_keys SET revoked_at = $2 WHERE revoked_at IS NULL AND (id = $1 OR prefix = $1)`,
        [key, now],
      );
      return r.rowCount ?? 0;
    },
  };
}
