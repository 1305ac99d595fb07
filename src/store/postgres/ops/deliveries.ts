import type { Delivery, DeliveryResult } from '../../port.js';
import type { Db } from '../db.js';
import { deliveryFromRow } from '../rows.js';

export function deliveryOps(db: Db) {
  return {
    async claimDueDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
      const off = await db.offset();
      // SKIP LOCKED: two senders claiming at once take different deliveries, neither waits.
      const { rows } = await db.query(
        'reelay_delivery_claim',
        `WITH due AS (
           SELECT id FROM deliveries
           WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
           ORDER BY next_attempt_at LIMIT $3
           FOR UPDATE SKIP LOCKED)
         UPDATE deliveries d SET lease_until = $2 FROM due WHERE d.id = due.id
         RETURNING d.*`,
        [Math.round(now + off), Math.round(now + off + leaseMs), limit],
      );
      return rows.map((r) => deliveryFromRow(r, off)).sort((a, b) => (a.nextAttemptAt ?? 0) - (b.nextAttemptAt ?? 0) || a.id - b.id);
    },
    async finishDelivery(r: DeliveryResult): Promise<void> {
      const off = await db.offset();
      await db.query(
        'reelay_delivery_finish',
        `UPDATE deliveries SET attempts = $2, status = $3, next_attempt_at = $4, last_error = $5, last_status = $6,
           delivered_at = $7, lease_until = NULL
         WHERE id = $1`,
        [r.id, r.attempts, r.status, r.nextAttemptAt === null ? null : Math.round(r.nextAttemptAt + off), r.lastError, r.lastStatus, r.deliveredAt],
      );
    },
    async listDeliveries(taskId: string): Promise<Delivery[]> {
      const off = await db.offset();
      const { rows } = await db.query('reelay_delivery_list', `SELECT * FROM deliveries WHERE task_id = $1 ORDER BY id`, [taskId]);
      return rows.map((r) => deliveryFromRow(r, off));
    },
  };
}
