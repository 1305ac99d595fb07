import type { DashboardSession, TaskStats } from '../../port.js';
import { keyFromRow, sessionFromRow } from '../../sql/columns.js';
import { groupFromRow, statesFromRows, statsSql } from '../../sql/stats.js';
import type { Db } from '../db.js';

type Row = Record<string, unknown>;

/** The dashboard's sessions, shared by every API process, and its overview. */
export function dashboardOps(db: Db) {
  return {
    async createSession(s: DashboardSession): Promise<void> {
      await db.query(
        'reelay_session_insert',
        `INSERT INTO dashboard_sessions (token_hash, key_id, tenant_id, created_at, idle_until, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
        [s.tokenHash, s.keyId, s.tenantId, s.createdAt, s.idleUntil, s.expiresAt],
      );
    },
    async findSession(tokenHash: string, now: number): Promise<{ session: DashboardSession; key: ReturnType<typeof keyFromRow> } | undefined> {
      // The key is read with the session: a revoked one ends it at once.
      const { rows } = await db.query(
        'reelay_session_find',
        `SELECT s.*, k.id AS k_id, k.tenant_id AS k_tenant_id, k.hash AS k_hash, k.prefix AS k_prefix, k.name AS k_name,
           k.source AS k_source, k.created_at AS k_created_at, k.revoked_at AS k_revoked_at
         FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id
         WHERE s.token_hash = $1 AND s.idle_until > $2 AND k.revoked_at IS NULL`,
        [tokenHash, now],
      );
      const r = rows[0] as Row | undefined;
      if (!r) return undefined;
      const key = keyFromRow(Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith('k_')).map(([k, v]) => [k.slice(2), v])));
      return { session: sessionFromRow(r), key };
    },
    async touchSession(tokenHash: string, idleUntil: number): Promise<void> {
      await db.query('reelay_session_touch', `UPDATE dashboard_sessions SET idle_until = LEAST($2::bigint, expires_at) WHERE token_hash = $1`, [tokenHash, idleUntil]);
    },
    async deleteSession(tokenHash: string): Promise<void> {
      await db.query('reelay_session_delete', `DELETE FROM dashboard_sessions WHERE token_hash = $1`, [tokenHash]);
    },
    async purgeSessions(now: number): Promise<number> {
      const r = await db.query(
        'reelay_session_purge',
        `DELETE FROM dashboard_sessions WHERE token_hash IN (SELECT token_hash FROM dashboard_sessions WHERE idle_until <= $1 LIMIT 1000)`,
        [now],
      );
      return r.rowCount ?? 0;
    },
    async taskStats(tenantId: string | null, w: { hourFrom: number; dayFrom: number }): Promise<TaskStats> {
      const q = statsSql(tenantId, w);
      const run = async (name: string, build: (p: (v: unknown, type: string) => string) => string) => {
        const values: unknown[] = [];
        const text = build((v, type) => (values.push(v), `$${values.length}::${type}`));
        // Two shapes per statement (a tenant's, every tenant's): named by it.
        return (await db.query<Row>(`${name}_${tenantId === null ? 'all' : 'tenant'}`, text, values)).rows;
      };
      const [states, models, providers, credits] = await Promise.all([
        run('reelay_stats_states', q.states),
        run('reelay_stats_models', q.models),
        run('reelay_stats_providers', q.providers),
        run('reelay_stats_credits', q.credits),
      ]);
      return { states: statesFromRows(states), models: models.map(groupFromRow), providers: providers.map(groupFromRow), creditsCharged: Number(credits[0]?.charged ?? 0) };
    },
  };
}
