import type { Database } from 'better-sqlite3';
import type { WebhookEndpoint } from '../../port.js';
import { ENDPOINT_DISABLED, deliveryDetail, endpointFromRow } from '../../sql/columns.js';

/** Webhook signing secrets per tenant (migration 008). */
export function webhookOps(db: Database) {
  const live = db.prepare(`SELECT secret FROM webhook_secrets WHERE tenant_id = ? AND (retire_at IS NULL OR retire_at > ?) ORDER BY created_at DESC, secret`);
  const add = db.prepare(`INSERT INTO webhook_secrets (tenant_id, secret, created_at, retire_at) VALUES (?, ?, ?, NULL)`);
  const retire = db.prepare(`UPDATE webhook_secrets SET retire_at = ? WHERE tenant_id = ? AND (retire_at IS NULL OR retire_at > ?)`);
  const tenant = db.prepare(`SELECT tenant_id FROM tasks WHERE id = ?`);
  const ensure = db.transaction((tenantId: string, now: number, secret: string): string[] => {
    const rows = live.all(tenantId, now) as { secret: string }[];
    if (rows.length > 0) return rows.map((r) => r.secret);
    add.run(tenantId, secret, now);
    return [secret];
  });
  const rotate = db.transaction((tenantId: string, secret: string, now: number, overlapMs: number): string[] => {
    retire.run(now + overlapMs, tenantId, now + overlapMs);
    add.run(tenantId, secret, now);
    return (live.all(tenantId, now) as { secret: string }[]).map((r) => r.secret);
  });
  const addEndpoint = db.prepare(`INSERT INTO webhook_endpoints (id, tenant_id, url, events, created_at) VALUES (@id, @tenantId, @url, @events, @createdAt)`);
  const endpointsOf = db.prepare(`SELECT * FROM webhook_endpoints WHERE tenant_id = ? ORDER BY created_at, id`);
  const allEndpoints = db.prepare(`SELECT * FROM webhook_endpoints ORDER BY created_at, id`);
  const dropEndpoint = db.prepare(`DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`);
  const disable = db.prepare(`UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL`);
  // What is still owed to a disabled endpoint is not sent: each such delivery fails, and says why.
  // (Those of a deleted task go: there is no log left to show them in.)
  const dropOrphans = db.prepare(
    `DELETE FROM deliveries WHERE endpoint_id = @id AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = deliveries.task_id)`,
  );
  const dropOwed = db.prepare(
    `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = @error
     WHERE endpoint_id = @id AND status = 'pending' AND next_attempt_at IS NOT NULL
     RETURNING id, task_id, attempts, last_status`,
  );
  const dropped = db.prepare(`INSERT INTO task_events (task_id, at, kind, actor, detail) SELECT id, ?, 'delivery', 'deliverer', ? FROM tasks WHERE id = ?`);
  const disableAll = db.transaction((id: string, now: number, reason: string): void => {
    if (disable.run(now, reason, id).changes === 0) return;
    const error = `${ENDPOINT_DISABLED} (${reason})`;
    dropOrphans.run({ id });
    for (const r of dropOwed.all({ id, error }) as { id: number; task_id: string; attempts: number; last_status: number | null }[]) {
      dropped.run(now, JSON.stringify(deliveryDetail({ id: r.id, attempts: r.attempts, status: 'failed', lastStatus: r.last_status, lastError: error, nextAttemptAt: null, deliveredAt: null })), r.task_id);
    }
  });
  return {
    createEndpoint: async (e: WebhookEndpoint) => void addEndpoint.run({ id: e.id, tenantId: e.tenantId, url: e.url, events: JSON.stringify(e.events), createdAt: e.createdAt }),
    listEndpoints: async (tenantId?: string) => ((tenantId === undefined ? allEndpoints.all() : endpointsOf.all(tenantId)) as Record<string, unknown>[]).map(endpointFromRow),
    deleteEndpoint: async (tenantId: string, id: string) => dropEndpoint.run(tenantId, id).changes === 1,
    disableEndpoint: async (id: string, now: number, reason: string) => disableAll.immediate(id, now, reason),
    webhookSecrets: async (tenantId: string, now: number, secret: string) => ensure.immediate(tenantId, now, secret),
    rotateWebhookSecret: async (tenantId: string, secret: string, now: number, overlapMs: number) => rotate.immediate(tenantId, secret, now, overlapMs),
    tenantOfTask: async (taskId: string) => (tenant.get(taskId) as { tenant_id: string } | undefined)?.tenant_id,
  };
}
