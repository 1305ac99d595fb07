import type { Db } from '../db.js';

const LIVE = `SELECT secret FROM webhook_secrets WHERE tenant_id = $1 AND (retire_at IS NULL OR retire_at > $2) ORDER BY created_at DESC, secret`;

/** Webhook signing secrets per tenant (migration 006). */
export function webhookOps(db: Db) {
  const live = async (tenantId: string, now: number): Promise<string[]> =>
    (await db.query<{ secret: string }>('reelay_webhook_secrets', LIVE, [tenantId, now])).rows.map((r) => r.secret);
  return {
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
