import type { Task } from '../../../core/task.js';
import { type CreditAccount, InsufficientCreditsError, type LedgerEntry } from '../../port.js';
import { accountFromRow, ledgerFromRow } from '../../sql/columns.js';
import type { Db, Query } from '../db.js';

// A task's reservation, its ledger entry and its audit event, in one statement: no row when the
// balance is short (or there is no account). $1 tenant, $2 credits, $3 now, $4 task, $5 item.
const RESERVE = `WITH a AS (
    UPDATE credit_accounts SET balance = balance - $2, updated_at = $3 WHERE tenant_id = $1 AND balance >= $2 RETURNING balance),
  l AS (INSERT INTO credit_ledger (tenant_id, task_id, kind, amount, charged, at, note) SELECT $1, $4, 'reserve', -$2::bigint, NULL, $3, $5 FROM a),
  e AS (INSERT INTO task_events (task_id, at, kind, actor, detail)
    SELECT $4, $3, 'ledger', 'api', json_build_object('entry', 'reserve', 'amount', -$2::bigint, 'balance', a.balance, 'reason', $5::text) FROM a)
  SELECT balance FROM a`;
const ACCOUNT = `SELECT * FROM credit_accounts WHERE tenant_id = $1`;

/** Inside a create's transaction (its `q`): takes the task's charge from its tenant's balance, or throws. */
export async function reserveIn(q: Query, task: Task): Promise<void> {
  const charge = task.charge;
  if (!charge) return;
  const { rows } = await q('reelay_credit_reserve', RESERVE, [task.tenantId, charge.credits, task.createdAt, task.id, charge.item]);
  if (rows.length === 1) return;
  const account = (await q<{ balance: number }>('reelay_credit_account', ACCOUNT, [task.tenantId])).rows[0];
  throw new InsufficientCreditsError(charge.credits, Number(account?.balance ?? 0));
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
        await q('reelay_credit_entry', `INSERT INTO credit_ledger (tenant_id, task_id, kind, amount, charged, at, note) VALUES ($1, NULL, 'topup', $2, NULL, $3, $4)`, [tenantId, Number(row.balance) - Number(before), now, note]);
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
