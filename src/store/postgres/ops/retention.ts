import type { Task } from '../../../core/task.js';
import type { Db } from '../db.js';
import { taskFromRow } from '../rows.js';

/** The sweeper's side: terminal tasks whose files expire, and the tombstones they leave. */
export function retentionOps(db: Db) {
  return {
    async listExpiring(before: number, limit: number): Promise<Task[]> {
      const off = await db.offset();
      // A leased task (a rendition being made) is left for a later sweep.
      const { rows } = await db.query(
        'reelay_expiring',
        `SELECT * FROM tasks
         WHERE completed_at IS NOT NULL AND completed_at < $1 AND state IN ('succeeded', 'failed', 'canceled')
           AND (cancel_outcome IS NULL OR cancel_outcome <> 'pending') AND hd_state <> 'pending' AND uhd_state <> 'pending'
           AND lease_owner IS NULL
         ORDER BY completed_at LIMIT $2`,
        [before, limit],
      );
      return rows.map((r) => taskFromRow(r, off));
    },
    async markExpired(ids: string[], now: number): Promise<void> {
      if (ids.length === 0) return;
      // The inputs' URLs go with the files. One statement: the task rows and their artifact rows
      // change together.
      await db.query(
        'reelay_expire',
        `WITH was AS (
           SELECT id, state FROM tasks WHERE id = ANY($1::text[]) AND state IN ('succeeded', 'failed', 'canceled') FOR UPDATE),
         expired AS (
           UPDATE tasks t SET state = 'expired', next_run_at = NULL, updated_at = $2, images = '[]'
           FROM was WHERE t.id = was.id RETURNING t.id, was.state AS from_state),
         e AS (
           INSERT INTO task_events (task_id, at, kind, actor, from_state, to_state, detail)
           SELECT id, $2, 'state', 'sweeper', from_state, 'expired', '{"reason":"retention: the files were removed"}'::json FROM expired)
         DELETE FROM artifacts WHERE task_id = ANY($1::text[])`,
        [ids, now],
      );
    },
    async purgeTombstones(before: number): Promise<number> {
      const { rows } = await db.query<{ n: number }>(
        'reelay_purge',
        `WITH doomed AS (
           DELETE FROM tasks WHERE id IN (
             SELECT id FROM tasks WHERE state = 'expired' AND completed_at < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED)
           RETURNING id),
         a AS (DELETE FROM attempts WHERE task_id IN (SELECT id FROM doomed)),
         d AS (DELETE FROM deliveries WHERE task_id IN (SELECT id FROM doomed)),
         r AS (DELETE FROM artifacts WHERE task_id IN (SELECT id FROM doomed)),
         e AS (DELETE FROM task_events WHERE task_id IN (SELECT id FROM doomed))
         SELECT count(*) AS n FROM doomed`,
        [before],
      );
      return rows[0]!.n;
    },
  };
}
