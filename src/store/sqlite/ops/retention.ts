import type { Database } from 'better-sqlite3';
import type { Task } from '../../../core/task.js';
import { taskFromRow } from '../rows.js';

export function retentionOps(db: Database) {
  const expiring = db.prepare(
    `SELECT * FROM tasks
     WHERE completed_at IS NOT NULL AND completed_at < @before AND state IN ('succeeded', 'failed', 'canceled')
       AND (cancel_outcome IS NULL OR cancel_outcome <> 'pending') AND hd_state <> 'pending' AND uhd_state <> 'pending'
       AND lease_owner IS NULL
     ORDER BY completed_at LIMIT @limit`,
  );
  const expire = db.prepare(
    `UPDATE tasks SET state = 'expired', next_run_at = NULL, updated_at = @now, images = '[]'
     WHERE id = @id AND state IN ('succeeded', 'failed', 'canceled')`,
  );
  const dropArtifacts = db.prepare(`DELETE FROM artifacts WHERE task_id = ?`);
  const tombstones = db.prepare(
    `SELECT id FROM tasks WHERE state = 'expired' AND completed_at < ? LIMIT 1000`,
  );
  const dropTask = db.prepare(`DELETE FROM tasks WHERE id = ?`);
  const dropAttempts = db.prepare(`DELETE FROM attempts WHERE task_id = ?`);
  const dropDeliveries = db.prepare(`DELETE FROM deliveries WHERE task_id = ?`);
  const dropEvents = db.prepare(`DELETE FROM task_events WHERE task_id = ?`);
  const expiredEvent = db.prepare(
    `INSERT INTO task_events (task_id, at, kind, actor, from_state, to_state, detail)
     SELECT id, @now, 'state', 'sweeper', state, 'expired', '{"reason":"retention: the files were removed"}'
     FROM tasks WHERE id = @id AND state IN ('succeeded', 'failed', 'canceled')`,
  );

  const markExpired = db.transaction((ids: string[], now: number) => {
    for (const id of ids) {
      expiredEvent.run({ id, now });
      expire.run({ id, now });
      dropArtifacts.run(id);
    }
  });
  const purge = db.transaction((before: number): number => {
    const ids = (tombstones.all(before) as { id: string }[]).map((r) => r.id);
    for (const id of ids) {
      dropTask.run(id);
      dropAttempts.run(id);
      dropDeliveries.run(id);
      dropArtifacts.run(id);
      dropEvents.run(id);
    }
    return ids.length;
  });

  return {
    listExpiring(before: number, limit: number): Task[] {
      return (expiring.all({ before, limit }) as Record<string, unknown>[]).map(taskFromRow);
    },
    markExpired(ids: string[], now: number): void {
      markExpired.immediate(ids, now);
    },
    purgeTombstones(before: number): number {
      return purge.immediate(before);
    },
  };
}
