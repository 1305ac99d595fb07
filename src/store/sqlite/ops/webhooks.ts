import type { Database } from 'better-sqlite3';
import type { WebhookEndpoint } from '../../port.js';
import { endpointFromRow } from '../../sql/columns.js';

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
  return {
    createEndpoint: async (e: WebhookEndpoint) => void addEndpoint.run({ id: e.id, tenantId: e.tenantId, url: e.url, events: JSON.stringify(e.events), createdAt: e.createdAt }),
    listEndpoints: async (tenantId?: string) => ((tenantId === undefined ? allEndpoints.all() : endpointsOf.all(tenantId)) as Record<string, unknown>[]).map(endpointFromRow),
    deleteEndpoint: async (tenantId: string, id: string) => dropEndpoint.run(tenantId, id).changes === 1,
    disableEndpoint: async (id: string, now: number, reason: string) => void disable.run(now, reason, id),
    webhookSecrets: async (tenantId: string, now: number, secret: string) => ensure.immediate(tenantId, now, secret),
    rotateWebhookSecret: async (tenantId: string, secret: string, now: number, overlapMs: number) => rotate.immediate(tenantId, secret, now, overlapMs),
    tenantOfTask: async (taskId: string) => (tenant.get(taskId) as { tenant_id: string } | undefined)?.tenant_id,
  };
}
