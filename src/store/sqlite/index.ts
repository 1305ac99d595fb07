import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from './driver.js';
import type { Store } from '../port.js';
import { Checkpointer } from './checkpoint.js';
import { migrate } from './migrate.js';
import { claimOps } from './ops/claim.js';
import { creditOps } from './ops/credits.js';
import { dashboardOps } from './ops/dashboard.js';
import { deliveryOps } from './ops/deliveries.js';
import { keyStateOps } from './ops/idempotency.js';
import { keyOps } from './ops/keys.js';
import { retentionOps } from './ops/retention.js';
import { taskOps } from './ops/tasks.js';
import { webhookOps } from './ops/webhooks.js';

/**
 * The embedded store: one SQLite file in WAL mode (better-sqlite3). Its calls are synchronous and
 * fast; they are wrapped in promises to honour the port, which a network database needs.
 */
export function openSqliteStore(file: string): Store {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash or power loss
  // can lose the last transactions.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  const checkpointer = file === ':memory:' ? undefined : new Checkpointer(db, file);

  const keys = keyOps(db);
  const idempotency = keyStateOps(db);
  const credits = creditOps(db);
  const tasks = taskOps(db, idempotency.answerKeyNow, credits);
  const claim = claimOps(db, credits.close);
  const retention = retentionOps(db);
  const deliveries = deliveryOps(db);

  return {
    // One process owns the file: one gateway per data folder.
    capabilities: { singleWriter: true },
    async migrate() {
      return migrate(db);
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      await checkpointer?.close();
      db.close();
    },
    insertKey: async (k) => keys.insertKey(k),
    findKeyByHash: async (h) => keys.findKeyByHash(h),
    listKeys: async () => keys.listKeys(),
    revokeKey: async (k, now) => keys.revokeKey(k, now),
    createTask: (t, lease, once) => tasks.createTask(t, lease, once),
    getTask: async (tenant, id) => tasks.getTask(tenant, id),
    claimDue: async (owner, now, leaseMs, limit, lane) => claim.claimDue(owner, now, leaseMs, limit, lane),
    extendLeases: async (owner, ids, until) => claim.extendLeases(owner, ids, until),
    releaseLeases: async (owner, ids) => claim.releaseLeases(owner, ids),
    commitStep: (owner, c) => claim.commitStep(owner, c),
    countInFlight: async () => tasks.countInFlight(),
    admitTenant: async (tenant, id, limit) => tasks.admitTenant(tenant, id, limit),
    wakeByUpstream: async (p, u, now) => tasks.wakeByUpstream(p, u, now),
    requestHd: async (tenant, id, now, price) => tasks.requestHd(tenant, id, now, price),
    requestUhd: async (tenant, id, now, callbackUrl, price) => tasks.requestUhd(tenant, id, now, callbackUrl, price),
    cancelTask: async (tenant, id, now, o) => tasks.cancelTask(tenant, id, now, o?.deleteAfter ?? false),
    listTasks: async (tenant, page) => tasks.listTasks(tenant, page),
    deleteTask: async (tenant, id) => tasks.deleteTask(tenant, id),
    listAttempts: async (id) => tasks.listAttempts(id),
    listEvents: async (id) => tasks.listEvents(id),
    changedTasks: async (tenant, since, limit) => tasks.changedTasks(tenant, since, limit),
    listArtifacts: async (id) => tasks.listArtifacts(id),
    listExpiring: async (before, limit) => retention.listExpiring(before, limit),
    markExpired: async (ids, now) => retention.markExpired(ids, now),
    purgeTombstones: async (before) => retention.purgeTombstones(before),
    takeKey: idempotency.takeKey,
    answerKey: idempotency.answerKey,
    dropKey: idempotency.dropKey,
    purgeKeys: idempotency.purgeKeys,
    ...webhookOps(db),
    creditAccount: async (tenant) => credits.creditAccount(tenant),
    addCredits: async (tenant, amount, now, note) => credits.addCredits(tenant, amount, now, note),
    listLedger: async (tenant, page) => credits.listLedger(tenant, page),
    claimDueDeliveries: async (now, leaseMs, limit) =>
      deliveries.claimDueDeliveries(now, leaseMs, limit),
    finishDelivery: (r) => deliveries.finishDelivery(r),
    listDeliveries: async (id) => deliveries.listDeliveries(id),
    resendDelivery: async (taskId, id, now) => deliveries.resendDelivery(taskId, id, now),
    ...dashboardOps(db),
  };
}
