import type { Store } from '../port.js';
import { Db, type PostgresStoreOptions } from './db.js';
import { migrate } from './migrate.js';
import { admitOps } from './ops/admit.js';
import { claimOps } from './ops/claim.js';
import { deliveryOps } from './ops/deliveries.js';
import { keyStateOps } from './ops/idempotency.js';
import { keyOps } from './ops/keys.js';
import { retentionOps } from './ops/retention.js';
import { taskOps } from './ops/tasks.js';
import { creditOps } from './ops/credits.js';
import { dashboardOps } from './ops/dashboard.js';
import { webhookOps } from './ops/webhooks.js';
import { Signals } from './signals.js';

export type { PostgresStoreOptions } from './db.js';

/**
 * The shared store: one PostgreSQL database that many gateway processes use at once. Opening it
 * connects lazily and does not migrate (`migrate` does, under a lock). Every call is one statement
 * on a pooled connection, so a call is atomic on its own; claims skip rows other claims are taking.
 * Times callers pass are moved onto the database's clock (`PostgresStoreOptions.clock`).
 *
 * @example
 *   const store = openPostgresStore('postgres://reelay@db/reelay', { max: 20 });
 *   await store.migrate();
 */
export function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Store {
  const db = new Db(url, opts);
  const keys = keyOps(db);
  const tasks = taskOps(db);
  const claim = claimOps(db);
  const retention = retentionOps(db);
  const deliveries = deliveryOps(db);
  const signals = new Signals(url, db, opts.onError);

  return {
    // Many processes write: nobody may cache tasks or count in-flight jobs in memory.
    capabilities: { singleWriter: false },
    migrate: () => migrate(db.pool),
    async ping() {
      await db.query('reelay_ping', 'SELECT 1');
    },
    close: async () => {
      await signals.close();
      await db.pool.end();
    },
    signal: (s) => signals.notify(s),
    onSignal: (fn) => signals.subscribe(fn),
    ...admitOps(db),
    ...keys,
    ...tasks,
    ...claim,
    ...retention,
    ...deliveries,
    ...keyStateOps(db),
    ...webhookOps(db),
    ...creditOps(db),
    ...dashboardOps(db),
  };
}
