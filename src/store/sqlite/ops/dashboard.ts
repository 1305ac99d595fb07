import type { Database } from 'better-sqlite3';
import type { DashboardSession, TaskStats } from '../../port.js';
import { keyFromRow, sessionFromRow } from '../../sql/columns.js';
import { groupFromRow, statesFromRows, statsSql } from '../../sql/stats.js';

type Row = Record<string, unknown>;

/** The dashboard's sessions and overview. */
export function dashboardOps(db: Database) {
  const insert = db.prepare(
    `INSERT INTO dashboard_sessions (token_hash, key_id, tenant_id, created_at, idle_until, expires_at)
     VALUES (@tokenHash, @keyId, @tenantId, @createdAt, @idleUntil, @expiresAt)`,
  );
  // The key is read with the session: a revoked one ends it at once.
  const find = db.prepare(
    `SELECT s.*, k.id AS k_id, k.tenant_id AS k_tenant_id, k.hash AS k_hash, k.prefix AS k_prefix, k.name AS k_name,
       k.source AS k_source, k.created_at AS k_created_at, k.revoked_at AS k_revoked_at
     FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id
     WHERE s.token_hash = ? AND s.idle_until > ? AND k.revoked_at IS NULL`,
  );
  const touch = db.prepare(`UPDATE dashboard_sessions SET idle_until = MIN(?, expires_at) WHERE token_hash = ?`);
  const remove = db.prepare(`DELETE FROM dashboard_sessions WHERE token_hash = ?`);
  const purge = db.prepare(`DELETE FROM dashboard_sessions WHERE token_hash IN (SELECT token_hash FROM dashboard_sessions WHERE idle_until <= ? LIMIT 1000)`);
  return {
    async createSession(s: DashboardSession): Promise<void> {
      insert.run(s);
    },
    async findSession(tokenHash: string, now: number) {
      const r = find.get(tokenHash, now) as Row | undefined;
      if (!r) return undefined;
      const key = keyFromRow(Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith('k_')).map(([k, v]) => [k.slice(2), v])));
      return { session: sessionFromRow(r), key };
    },
    async touchSession(tokenHash: string, idleUntil: number): Promise<void> {
      touch.run(idleUntil, tokenHash);
    },
    async deleteSession(tokenHash: string): Promise<void> {
      remove.run(tokenHash);
    },
    async purgeSessions(now: number): Promise<number> {
      return purge.run(now).changes;
    },
    async taskStats(tenantId: string | null, w: { hourFrom: number; dayFrom: number }): Promise<TaskStats> {
      const q = statsSql(tenantId, w);
      const run = (build: (p: (v: unknown) => string) => string) => {
        const values: unknown[] = [];
        const text = build((v) => (values.push(v), '?'));
        return db.prepare(text).all(...values) as Row[];
      };
      return {
        states: statesFromRows(run(q.states)),
        models: run(q.models).map(groupFromRow),
        providers: run(q.providers).map(groupFromRow),
        creditsCharged: Number(run(q.credits)[0]?.charged ?? 0),
      };
    },
  };
}
