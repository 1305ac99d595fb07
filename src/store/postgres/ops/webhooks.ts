import type { WebhookEndpoint } from '../../port.js';
import { ENDPOINT_DISABLED, endpointFromRow } from '../../sql/columns.js';
import type { Db } from '../db.js';

const LIVE = `SELECT secret FROM webhook_secrets WHERE tenant_id = $1 AND (retire_at IS NULL OR retire_at > $2) ORDER BY created_at DESC, secret`;

/** Webhook signing secrets per tenant (migration 006). */
export function webhookOps(db: Db) {
  const live = async (tenantId: string, now: number): Promise<string[]> =>
    (await db.query<{ secret: string }>('reelay_webhook_secrets', LIVE, [tenantId, now])).rows.map((r) => r.secret);
  return {
    async createEndpoint(e: WebhookEndpoint): Promise<void> {
      await db.query('reelay_endpoint_add', `INSERT INTO webhook_endpoints (id, tenant_id, url, events, created_at) VALUES ($1, $2, $3, $4::json, $5)`, [e.id, e.tenantId, e.url, JSON.stringify(e.events), e.createdAt]);
    },
    async listEndpoints(tenantId?: string): Promise<WebhookEndpoint[]> {
      const { rows } = tenantId === undefined
        ? await db.query('reelay_endpoints_all', `SELECT * FROM webhook_endpoints ORDER BY created_at, id`)
        : await db.query('reelay_endpoints', `SELECT * FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id`, [tenantId]);
      return rows.map(endpointFromRow);
    },
    async deleteEndpoint(tenantId: string, id: string): Promise<boolean> {
      return ((await db.query('reelay_endpoint_delete', `DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2`, [tenantId, id])).rowCount ?? 0) === 1;
    },
    async disableEndpoint(id: string, now: number, reason: string): Promise<void> {
      // What is still owed to a disabled endpoint is not sent: each such delivery fails, and says
      // why in its task's audit trail, in the statement that disables it.
      const error = `${ENDPOINT_DISABLED} (${reason})`;
      await db.query(
        'reelay_endpoint_disable',
        `WITH e AS (UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 WHERE id = $1 AND disabled_at IS NULL RETURNING id),
         gone AS (
           DELETE FROM deliveries WHERE endpoint_id IN (SELECT id FROM e) AND status = 'pending'
             AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = deliveries.task_id)),
         d AS (
           UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $4
           WHERE endpoint_id IN (SELECT id FROM e) AND status = 'pending' AND next_attempt_at IS NOT NULL
             AND EXISTS (SELECT 1 FROM tasks WHERE id = deliveries.task_id)
           RETURNING id, task_id, attempts, last_status)
         INSERT INTO task_events (task_id, at, kind, actor, detail)
         SELECT d.task_id, $2, 'delivery', 'deliverer', json_build_object('delivery', d.id, 'try', d.attempts, 'status', d.last_status, 'error', $4::text, 'outcome', 'failed')
         FROM d`,
        [id, now, reason, error],
      );
    },
    async webhookSecrets(tenantId: string, now: number, secret: string): Promise<string[]> {
      const found = await live(tenantId, now);
      if (found.length > 0) return found;
      // Of many first asks at once, one inserts: the tenant's advisory lock orders them.
      return db.transaction(async (q) => {
        await q('reelay_webhook_lock', `SELECT pg_advisory_xact_lock(hashtext('reelay_webhook:' || $1))`, [tenantId]);
        const rows = (await q<{ secret: string }>('reelay_webhook_secrets', LIVE, [tenantId, now])).rows;
        if (rows.length > 0) return rows.map((r) => r.secret);
        await q('reelay_webhook_add', `INSERT INTO webhook_secrets (tenant_id, secret, created_at) VALUES ($1, $2, $3)`, [tenantId, secret, now]);
        return [secret];
      });
    },
    async rotateWebhookSecret(tenantId: string, secret: string, now: number, overlapMs: number): Promise<string[]> {
      return db.transaction(async (q) => {
        await q('reelay_webhook_lock', `SELECT pg_advisory_xact_lock(hashtext('reelay_webhook:' || $1))`, [tenantId]);
        await q('reelay_webhook_retire', `UPDATE webhook_secrets SET retire_at = $2 WHERE tenant_id = $1 AND (retire_at IS NULL OR retire_at > $2)`, [tenantId, now + overlapMs]);
        await q('reelay_webhook_add', `INSERT INTO webhook_secrets (tenant_id, secret, created_at) VALUES ($1, $2, $3)`, [tenantId, secret, now]);
        return (await q<{ secret: string }>('reelay_webhook_secrets', LIVE, [tenantId, now])).rows.map((r) => r.secret);
      });
    },
    async tenantOfTask(taskId: string): Promise<string | undefined> {
      return (await db.query<{ tenant_id: string }>('reelay_task_tenant', `SELECT tenant_id FROM tasks WHERE id = $1`, [taskId])).rows[0]?.tenant_id;
    },
  };
}
