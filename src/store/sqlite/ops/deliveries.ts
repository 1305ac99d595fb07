import type { Database } from 'better-sqlite3';
import type { Delivery, DeliveryResult } from '../../port.js';
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
  const finishGrouped = grouped(db, (r: DeliveryResult): void => {
    finish.run(r);
  }, { single: true });
  return {
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
