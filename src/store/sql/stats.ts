import type { GroupStats, TaskStats } from '../port.js';

type Row = Record<string, unknown>;

/** Adds a parameter and gives its placeholder. */
type Param = (v: unknown, type: string) => string;

/**
 * The SQL of `Store.taskStats`, alike on both backends (window functions, integer arithmetic).
 * Each statement is built with its own `param`, called in the order its placeholders appear (a
 * template's expressions are evaluated left to right). Each reads the tasks created since
 * `dayFrom` (`tasks_tenant_created` serves a tenant's), or the ledger's closes since then.
 */
export function statsSql(tenantId: string | null, w: { hourFrom: number; dayFrom: number }) {
  const tenant = (p: Param) => (tenantId === null ? '' : `tenant_id = ${p(tenantId, 'text')} AND `);
  const states = (p: Param) => `SELECT state, SUM(CASE WHEN created_at >= ${p(w.hourFrom, 'bigint')} THEN 1 ELSE 0 END) AS hour, COUNT(*) AS day
    FROM tasks WHERE ${tenant(p)}created_at >= ${p(w.dayFrom, 'bigint')} GROUP BY state ORDER BY state`;
  // Nearest-rank percentiles: the p-th is the smallest time whose rank r has r * 100 >= n * p.
  const group = (column: 'model' | 'provider') => (p: Param) => `WITH t AS (
      SELECT ${column} AS name, state, completed_at - created_at AS ms FROM tasks
      WHERE ${tenant(p)}created_at >= ${p(w.dayFrom, 'bigint')} AND state IN ('succeeded', 'failed')),
    r AS (
      SELECT name, ms, ROW_NUMBER() OVER (PARTITION BY name ORDER BY ms) AS rn, COUNT(*) OVER (PARTITION BY name) AS n
      FROM t WHERE state = 'succeeded')
    SELECT t.name, COUNT(*) AS ended, SUM(CASE WHEN t.state = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
      (SELECT MIN(r.ms) FROM r WHERE r.name = t.name AND r.rn * 100 >= r.n * 50) AS p50,
      (SELECT MIN(r.ms) FROM r WHERE r.name = t.name AND r.rn * 100 >= r.n * 95) AS p95
    FROM t GROUP BY t.name ORDER BY t.name`;
  const credits = (p: Param) => `SELECT COALESCE(SUM(charged), 0) AS charged FROM credit_ledger
    WHERE ${tenant(p)}kind IN ('settle', 'refund') AND at >= ${p(w.dayFrom, 'bigint')}`;
  return { states, models: group('model'), providers: group('provider'), credits };
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function groupFromRow(r: Row): GroupStats {
  return { name: r.name as string, ended: Number(r.ended), succeeded: Number(r.succeeded), p50Ms: num(r.p50), p95Ms: num(r.p95) };
}

export function statesFromRows(rows: Row[]): TaskStats['states'] {
  return rows.map((r) => ({ state: r.state as TaskStats['states'][number]['state'], hour: Number(r.hour), day: Number(r.day) }));
}
