import type { Task } from '../../../core/task.js';
import { type CreditAccount, InsufficientCreditsError, type LedgerEntry } from '../../port.js';
import { accountFromRow, ledgerFromRow } from '../../sql/columns.js';
import type { Db, Query } from '../db.js';

// An item's reservation, its ledger entry and its audit event, in one statement: no row when the
// balance is short (or there is no account). $1 tenant, $2 credits, $3 now, $4 task, $5 item.
const RESERVE = `WITH a AS (
    UPDATE credit_accounts SET balance = balance - $2, updated_at = $3 WHERE tenant_id = $1 AND balance >= $2 RETURNING balance),
  l AS (INSERT INTO credit_ledger (tenant_id, task_id, item, kind, amount, charged, at, note) SELECT $1, $4, $5, 'reserve', -$2::bigint, NULL, $3, NULL FROM a),
  e AS (INSERT INTO task_events (task_id, at, kind, actor, detail)
    SELECT $4, $3, 'ledger', 'api', json_build_object('entry', 'reserve', 'item', $5::text, 'amount', -$2::bigint, 'balance', a.balance) FROM a)
  SELECT balance FROM a`;
const ACCOUNT = `SELECT * FROM credit_accounts WHERE tenant_id = $1`;

/** Inside a transaction (its `q`): takes `credits` from the tenant's balance for the task's `item`, or throws. */
async function reserveItemIn(q: Query, tenantId: string, taskId: string, item: string, credits: number, now: number): Promise<void> {
  const { rows } = await q('reelay_credit_reserve', RESERVE, [tenantId, credits, now, taskId, item]);
  if (rows.length === 1) return;
  const account = (await q<{ balance: number }>('reelay_credit_account', ACCOUNT, [tenantId])).rows[0];
  throw new InsufficientCreditsError(credits, Number(account?.balance ?? 0));
}

/** Inside a create's transaction: takes the task's charge from its tenant's balance, or throws. */
export async function reserveIn(q: Query, task: Task): Promise<void> {
  if (task.charge) await reserveItemIn(q, task.tenantId, task.id, task.charge.item, task.charge.credits, task.createdAt);
}

/** Inside a rendition's ask: reserves it as its next item (`hd:1`, `hd:2` …), or throws. */
export async function reserveRenditionIn(q: Query, tenantId: string, taskId: string, rendition: 'hd' | 'uhd', credits: number, now: number): Promise<void> {
  const { rows } = await q<{ n: number }>('reelay_credit_asks', `SELECT count(*)::int AS n FROM credit_ledger WHERE task_id = $1 AND kind = 'reserve' AND item LIKE $2 || ':%'`, [taskId, rendition]);
  await reserveItemIn(q, tenantId, taskId, `${rendition}:${rows[0]!.n + 1}`, credits, now);
}

/** Credit accounts and the ledger (migration 011). A task's close goes with its commit (`ops/claim.ts`). */
export function creditOps(db: Db) {
  return {
    async creditAccount(tenantId: string): Promise<CreditAccount | undefined> {
      const row = (await db.query('reelay_credit_account', ACCOUNT, [tenantId])).rows[0];
      return row && accountFromRow(row);
    },
    async addCredits(tenantId: string, amount: number, now: number, note: string | null): Promise<CreditAccount> {
      return db.transaction(async (q) => {
        await q('reelay_credit_open', `INSERT INTO credit_accounts (tenant_id, balance, created_at, updated_at) VALUES ($1, 0, $2, $2) ON CONFLICT (tenant_id) DO NOTHING`, [tenantId, now]);
        // The row is locked by the UPDATE; `moved` is what it really changed (never below 0).
        const before = (await q<{ balance: number }>('reelay_credit_lock', `SELECT balance FROM credit_accounts WHERE tenant_id = $1 FOR UPDATE`, [tenantId])).rows[0]!.balance;
        const row = (await q('reelay_credit_topup', `UPDATE credit_accounts SET balance = GREATEST(0, balance + $2), updated_at = $3 WHERE tenant_id = $1 RETURNING *`, [tenantId, amount, now])).rows[0]!;
        await q('reelay_credit_entry', `INSERT INTO credit_ledger (tenant_id, task_id, item, kind, amount, charged, at, note) VALUES ($1, NULL, NULL, 'topup', $2, NULL, $3, $4)`, [tenantId, Number(row.balance) - Number(before), now, note]);
        return accountFromRow(row);
      });
    },
    async listLedger(tenantId: string, page: { before?: number; limit: number; taskId?: string }): Promise<LedgerEntry[]> {
      const before = page.before ?? Number.MAX_SAFE_INTEGER;
      const { rows } = page.taskId === undefined
        ? await db.query('reelay_ledger', `SELECT * FROM credit_ledger WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, [tenantId, before, page.limit])
        : await db.query('reelay_ledger_task', `SELECT * FROM credit_ledger WHERE tenant_id = $1 AND task_id = $4 AND id < $2 ORDER BY id DESC LIMIT $3`, [tenantId, before, page.limit, page.taskId]);
      return rows.map(ledgerFromRow);
    },
  };
}
