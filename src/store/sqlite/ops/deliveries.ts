import type { Database } from 'better-sqlite3';
import type { Delivery, DeliveryResult } from '../../port.js';
import { deliveryDetail } from '../../sql/columns.js';
import { grouped } from '../group.js';
import { deliveryFromRow } from '../rows.js';

export function deliveryOps(db: Database) {
  const claim = db.prepare(
    `UPDATE deliveries SET lease_until = @until
     WHERE id IN (
       SELECT id FROM deliveries
       WHERE status = 'pending' AND next_attempt_at <= @now
         AND (lease_until IS NULL OR lease_until < @now)
       ORDER BY next_attempt_at LIMIT @limit)
     RETURNING *`,
  );
  const finish = db.prepare(
    `UPDATE deliveries SET attempts = @attempts, status = @status, next_attempt_at = @nextAttemptAt,
       last_error = @lastError, last_status = @lastStatus, delivered_at = @deliveredAt, lease_until = NULL
     WHERE id = @id`,
  );
  const byTask = db.prepare(`SELECT * FROM deliveries WHERE task_id = ? ORDER BY id`);
  const tried = db.prepare(
    `INSERT INTO task_events (task_id, at, kind, actor, detail) SELECT task_id, @at, 'delivery', 'deliverer', @detail FROM deliveries WHERE id = @id`,
  );
  const finishGrouped = grouped(db, (r: DeliveryResult): void => {
    finish.run({ id: r.id, attempts: r.attempts, status: r.status, nextAttemptAt: r.nextAttemptAt, lastError: r.lastError, lastStatus: r.lastStatus, deliveredAt: r.deliveredAt });
    tried.run({ id: r.id, at: r.at ?? Date.now(), detail: JSON.stringify(deliveryDetail(r)) });
  }, { single: true });
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
      const rows = claim.all({ now, until: now + leaseMs, limit }) as Record<string, unknown>[];
      return rows.map(deliveryFromRow);
    },
    finishDelivery(r: DeliveryResult): Promise<void> {
      return finishGrouped(r);
    },
    listDeliveries(taskId: string): Delivery[] {
      return (byTask.all(taskId) as Record<string, unknown>[]).map(deliveryFromRow);
    },
  };
}
