import type { Database } from 'better-sqlite3';
import type { Delivery, DeliveryResult } from '../../port.js';
import { ENDPOINT_DISABLED, deliveryDetail } from '../../sql/columns.js';
import { grouped } from '../group.js';
import { deliveryFromRow } from '../rows.js';

export function deliveryOps(db: Database) {
  // Each claimed row says whether its endpoint was disabled meanwhile, and whether its task is
  // still there: such a delivery (owed by a commit that had not heard of the disable, or sent
  // while it came and answered for a retry) is not sent. It fails and says why, or, its task
  // deleted, goes: there is no log left to show it in.
  const claim = db.prepare(
    `UPDATE deliveries SET lease_until = @until
     WHERE id IN (
       SELECT id FROM deliveries
       WHERE status = 'pending' AND next_attempt_at <= @now
         AND (lease_until IS NULL OR lease_until < @now)
       ORDER BY next_attempt_at LIMIT @limit)
     RETURNING *, endpoint_id IN (SELECT id FROM webhook_endpoints WHERE disabled_at IS NOT NULL) AS endpoint_disabled,
       EXISTS (SELECT 1 FROM tasks WHERE id = deliveries.task_id) AS task_kept`,
  );
  const dead = db.prepare(`UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_until = NULL, last_error = '${ENDPOINT_DISABLED}' WHERE id = ?`);
  const drop = db.prepare(`DELETE FROM deliveries WHERE id = ?`);
  const deadEvent = db.prepare(`INSERT INTO task_events (task_id, at, kind, actor, detail) VALUES (?, ?, 'delivery', 'deliverer', ?)`);
  const claimAll = db.transaction((now: number, leaseMs: number, limit: number): Record<string, unknown>[] => {
    const rows = claim.all({ now, until: now + leaseMs, limit }) as Record<string, unknown>[];
    const live = rows.filter((r) => r.endpoint_disabled !== 1);
    for (const r of rows) {
      if (r.endpoint_disabled !== 1) continue;
      if (r.task_kept !== 1) {
        drop.run(r.id);
        continue;
      }
      dead.run(r.id);
      const detail = deliveryDetail({ id: r.id as number, attempts: r.attempts as number, status: 'failed', lastStatus: (r.last_status as number | null) ?? null, lastError: ENDPOINT_DISABLED, nextAttemptAt: null, deliveredAt: null });
      deadEvent.run(r.task_id, now, JSON.stringify(detail));
    }
    return live;
  });
  const finish = db.prepare(
    `UPDATE deliveries SET attempts = @attempts, status = @status, next_attempt_at = @nextAttemptAt,
       last_error = @lastError, last_status = @lastStatus, delivered_at = @deliveredAt, lease_until = NULL
     WHERE id = @id`,
  );
  const byTask = db.prepare(`SELECT * FROM deliveries WHERE task_id = ? ORDER BY id`);
  const tried = db.prepare(
    `INSERT INTO task_events (task_id, at, kind, actor, detail) SELECT d.task_id, @at, 'delivery', 'deliverer', @detail FROM deliveries d
     WHERE d.id = @id AND EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id)`,
  );
  // A delivery of a deleted task goes once it is done: there is no log left to show it in.
  const orphan = db.prepare(`DELETE FROM deliveries WHERE id = ? AND status <> 'pending' AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = deliveries.task_id)`);
  const finishGrouped = grouped(db, (r: DeliveryResult): void => {
    finish.run({ id: r.id, attempts: r.attempts, status: r.status, nextAttemptAt: r.nextAttemptAt, lastError: r.lastError, lastStatus: r.lastStatus, deliveredAt: r.deliveredAt });
    tried.run({ id: r.id, at: r.at ?? Date.now(), detail: JSON.stringify(deliveryDetail(r)) });
    orphan.run(r.id);
  });
  const resend = db.prepare(
    `UPDATE deliveries SET status = 'pending', next_attempt_at = @now, lease_until = NULL, delivered_at = NULL
     WHERE id = @id AND task_id = @taskId RETURNING *`,
  );
  return {
    resendDelivery(taskId: string, id: number, now: number): Delivery | undefined {
      const row = resend.get({ taskId, id, now }) as Record<string, unknown> | undefined;
      return row && deliveryFromRow(row);
    },
    claimDueDeliveries(now: number, leaseMs: number, limit: number): Delivery[] {
      return claimAll.immediate(now, leaseMs, limit).map(deliveryFromRow);
    },
    finishDelivery(r: DeliveryResult): Promise<void> {
      return finishGrouped(r);
    },
    listDeliveries(taskId: string): Delivery[] {
      return (byTask.all(taskId) as Record<string, unknown>[]).map(deliveryFromRow);
    },
  };
}
