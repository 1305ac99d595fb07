import type { Database } from 'better-sqlite3';
import type { LedgerClose } from '../../../core/credits.js';
import type { Task } from '../../../core/task.js';
import { type CreditAccount, InsufficientCreditsError, type LedgerEntry } from '../../port.js';
import { accountFromRow, ledgerDetail, ledgerFromRow } from '../../sql/columns.js';

type Row = Record<string, unknown>;

/**
 * Credits (migration 013): the accounts, the ledger, and the two entries a task makes, which run
 * inside the transactions of its create (`reserve`) and of its last step's commit (`close`).
 */
export function creditOps(db: Database) {
  const account = db.prepare(`SELECT * FROM credit_accounts WHERE tenant_id = ?`);
  const take = db.prepare(
    `UPDATE credit_accounts SET balance = balance - @credits, updated_at = @now
     WHERE tenant_id = @tenantId AND balance >= @credits RETURNING balance`,
  );
  const give = db.prepare(`UPDATE credit_accounts SET balance = balance + @amount, updated_at = @at WHERE tenant_id = @tenantId RETURNING balance`);
  const open = db.prepare(`INSERT INTO credit_accounts (tenant_id, balance, created_at, updated_at) VALUES (?, 0, ?, ?) ON CONFLICT (tenant_id) DO NOTHING`);
  const topUp = db.prepare(
    `UPDATE credit_accounts SET balance = MAX(0, balance + @amount), updated_at = @now WHERE tenant_id = @tenantId
     RETURNING *, balance - @before AS moved`,
  );
  // A task's reservation and its close are unique (credit_ledger_reserve, credit_ledger_close):
  // a second one is ignored, and changes no balance.
  const entry = db.prepare(
    `INSERT INTO credit_ledger (tenant_id, task_id, kind, amount, charged, at, note)
     VALUES (@tenantId, @taskId, @kind, @amount, @charged, @at, @note) ON CONFLICT DO NOTHING`,
  );
  const event = db.prepare(`INSERT INTO task_events (task_id, at, kind, actor, detail) VALUES (?, ?, 'ledger', ?, ?)`);
  const pages = {
    all: db.prepare(`SELECT * FROM credit_ledger WHERE tenant_id = @tenantId AND id < @before ORDER BY id DESC LIMIT @limit`),
    task: db.prepare(`SELECT * FROM credit_ledger WHERE tenant_id = @tenantId AND task_id = @taskId AND id < @before ORDER BY id DESC LIMIT @limit`),
  };

  const add = db.transaction((tenantId: string, amount: number, now: number, note: string | null): CreditAccount => {
    open.run(tenantId, now, now);
    const before = (account.get(tenantId) as Row).balance as number;
    const row = topUp.get({ tenantId, amount, now, before }) as Row;
    entry.run({ tenantId, taskId: null, kind: 'topup', amount: Number(row.moved), charged: null, at: now, note });
    return accountFromRow(row);
  });

  return {
    /** Inside a create's transaction: takes the task's charge from its tenant's balance, or throws. */
    reserve(task: Task): void {
      const charge = task.charge;
      if (!charge) return;
      const left = take.get({ tenantId: task.tenantId, credits: charge.credits, now: task.createdAt }) as { balance: number } | undefined;
      if (!left) throw new InsufficientCreditsError(charge.credits, Number((account.get(task.tenantId) as Row | undefined)?.balance ?? 0));
      // A task reserves once: a second reservation would take credits with no entry to show it.
      if (entry.run({ tenantId: task.tenantId, taskId: task.id, kind: 'reserve', amount: -charge.credits, charged: null, at: task.createdAt, note: charge.item }).changes !== 1) {
        throw new Error(`task ${task.id} has reserved its credits already`);
      }
      event.run(task.id, task.createdAt, 'api', JSON.stringify(ledgerDetail({ kind: 'reserve', amount: -charge.credits, balance: left.balance, reason: charge.item })));
    },
    /** Inside a commit's transaction: the task's one close; a second is ignored. */
    close(c: LedgerClose): void {
      if (entry.run({ tenantId: c.tenantId, taskId: c.taskId, kind: c.kind, amount: c.amount, charged: c.charged, at: c.at, note: c.reason }).changes === 0) return;
      const left = give.get({ tenantId: c.tenantId, amount: c.amount, at: c.at }) as { balance: number } | undefined;
      event.run(c.taskId, c.at, 'engine', JSON.stringify(ledgerDetail({ kind: c.kind, amount: c.amount, charged: c.charged, balance: left?.balance ?? null, reason: c.reason })));
    },
    creditAccount(tenantId: string): CreditAccount | undefined {
      const row = account.get(tenantId) as Row | undefined;
      return row && accountFromRow(row);
    },
    addCredits(tenantId: string, amount: number, now: number, note: string | null): CreditAccount {
      return add.immediate(tenantId, amount, now, note);
    },
    listLedger(tenantId: string, page: { before?: number; limit: number; taskId?: string }): LedgerEntry[] {
      const params = { tenantId, before: page.before ?? Number.MAX_SAFE_INTEGER, limit: page.limit };
      const rows = (page.taskId === undefined ? pages.all.all(params) : pages.task.all({ ...params, taskId: page.taskId })) as Row[];
      return rows.map(ledgerFromRow);
    },
  };
}
