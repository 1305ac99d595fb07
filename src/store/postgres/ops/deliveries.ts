import type { Delivery, DeliveryResult } from '../../port.js';
import { batched } from '../batch.js';
import type { Db } from '../db.js';
import { deliveryFromRow } from '../rows.js';
import { ENDPOINT_DISABLED, deliveryDetail } from '../../sql/columns.js';

export function deliveryOps(db: Db) {
  // The results of the sends of one turn are written as one statement (distinct ids: a delivery
  // is leased to one sender at a time), in id order: two such statements lock their rows in one
  // order, so they wait for each other and never deadlock.
  const finish = batched(async (results: DeliveryResult[]): Promise<void[]> => {
    const off = await db.offset();
    const col = <K extends keyof DeliveryResult>(k: K) => results.map((r) => r[k]);
    // One statement: the deliveries' rows, and each try in its task's audit trail.
    await db.query(
      'reelay_delivery_finish',
      `WITH x AS (
         SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::text[], $6::integer[], $7::bigint[], $8::bigint[], $9::json[])
           AS x(id, attempts, status, next_attempt_at, last_error, last_status, delivered_at, at, detail)),
       -- A delivery of a deleted task goes once it is done: there is no log left to show it in.
       g AS (
         DELETE FROM deliveries d USING x
         WHERE d.id = x.id AND x.status <> 'pending' AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id)),
       u AS (
         UPDATE deliveries d SET attempts = x.attempts, status = x.status, next_attempt_at = x.next_attempt_at,
           last_error = x.last_error, last_status = x.last_status, delivered_at = x.delivered_at, lease_until = NULL
         FROM x WHERE d.id = x.id AND (x.status = 'pending' OR EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id))
         RETURNING d.id, d.task_id)
       INSERT INTO task_events (task_id, at, kind, actor, detail)
       SELECT u.task_id, x.at, 'delivery', 'deliverer', x.detail FROM u JOIN x ON x.id = u.id
       WHERE EXISTS (SELECT 1 FROM tasks WHERE id = u.task_id)`,
      [
        col('id'), col('attempts'), col('status'), results.map((r) => (r.nextAttemptAt === null ? null : Math.round(r.nextAttemptAt + off))), col('lastError'), col('lastStatus'),
        results.map((r) => (r.deliveredAt === null ? null : Math.round(r.deliveredAt))), results.map((r) => Math.round(r.at ?? Date.now())), results.map((r) => JSON.stringify(deliveryDetail(r))),
      ],
    );
    return results.map(() => undefined);
  }, { max: 500, out: 2, order: (a, b) => a.id - b.id });

  return {
    async claimDueDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
      const off = await db.offset();
      // SKIP LOCKED: two senders claiming at once take different deliveries, neither waits.
      const { rows } = await db.query(
        'reelay_delivery_claim',
        // A delivery due to a disabled endpoint is not sent: it fails, and says why (see SQLite's).
        `WITH dead AS (
           UPDATE deliveries d SET status = 'failed', next_attempt_at = NULL, last_error = '${ENDPOINT_DISABLED}'
           FROM webhook_endpoints e
           WHERE e.id = d.endpoint_id AND e.disabled_at IS NOT NULL
             AND d.status = 'pending' AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1)
             AND EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id)
           RETURNING d.id, d.task_id, d.attempts, d.last_status),
         -- (Those of a deleted task go: there is no log left to show them in.)
         gone AS (
           DELETE FROM deliveries d USING webhook_endpoints e
           WHERE e.id = d.endpoint_id AND e.disabled_at IS NOT NULL
             AND d.status = 'pending' AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1)
             AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = d.task_id)),
         told AS (
           INSERT INTO task_events (task_id, at, kind, actor, detail)
           SELECT dead.task_id, $4, 'delivery', 'deliverer',
             json_build_object('delivery', dead.id, 'try', dead.attempts, 'status', dead.last_status, 'error', '${ENDPOINT_DISABLED}', 'outcome', 'failed')
           FROM dead),
         due AS (
           SELECT id FROM deliveries
           WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
             AND (endpoint_id IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = endpoint_id AND e.disabled_at IS NOT NULL))
           ORDER BY next_attempt_at LIMIT $3
           FOR UPDATE SKIP LOCKED)
         UPDATE deliveries d SET lease_until = $2 FROM due WHERE d.id = due.id
         RETURNING d.*`,
        [Math.round(now + off), Math.round(now + off + leaseMs), limit, Math.round(now)],
      );
      return rows.map((r) => deliveryFromRow(r, off)).sort((a, b) => (a.nextAttemptAt ?? 0) - (b.nextAttemptAt ?? 0) || a.id - b.id);
    },
    finishDelivery: (r: DeliveryResult): Promise<void> => finish(r),
    async resendDelivery(taskId: string, id: number, now: number): Promise<Delivery | undefined> {
      const off = await db.offset();
      const { rows } = await db.query(
        'reelay_delivery_resend',
        `UPDATE deliveries SET status = 'pending', next_attempt_at = $3, lease_until = NULL, delivered_at = NULL
         WHERE id = $2 AND task_id = $1 RETURNING *`,
        [taskId, id, Math.round(now + off)],
      );
      return rows[0] && deliveryFromRow(rows[0], off);
    },
    async listDeliveries(taskId: string): Promise<Delivery[]> {
      const off = await db.offset();
      const { rows } = await db.query('reelay_delivery_list', `SELECT * FROM deliveries WHERE task_id = $1 ORDER BY id`, [taskId]);
      return rows.map((r) => deliveryFromRow(r, off));
    },
  };
}
