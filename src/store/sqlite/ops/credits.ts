import type { Database } from 'better-sqlite3';
import type { LedgerClose } from '../../../core/credits.js';
import type { Task } from '../../../core/task.js';
import { type CreditAccount, InsufficientCreditsError, type LedgerEntry } from '../../port.js';
import { accountFromRow, ledgerDetail, ledgerFromRow } from '../../sql/columns.js';

type Row = Record<string, unknown>;

/**
 * Credits (migration 013): the accounts, the ledger, and the entries a task makes, which run
 * inside the transactions of its create or of a rendition's ask (`reserve`, `reserveItem`) and of
 * the step's commit that ends the item (`close`).
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
  // An item's reservation and its close are unique (credit_ledger_reserve, credit_ledger_close):
  // a second one inserts nothing, and changes no balance.
  const entry = db.prepare(
    `INSERT INTO credit_ledger (tenant_id, task_id, item, kind, amount, charged, at, note)
     VALUES (@tenantId, @taskId, @item, @kind, @amount, @charged, @at, @note) ON CONFLICT DO NOTHING`,
  );
  // The task's reservation of the item still open: `item` itself, or its latest ask (`hd:2`).
  const openOf = db.prepare(
    `SELECT item, -amount AS credits FROM credit_ledger r
     WHERE task_id = @taskId AND kind = 'reserve' AND (item = @item OR item LIKE @item || ':%')
       AND NOT EXISTS (SELECT 1 FROM credit_ledger c WHERE c.task_id = r.task_id AND c.item = r.item AND c.kind IN ('settle', 'refund'))
     ORDER BY id DESC LIMIT 1`,
  );
  const asks = db.prepare(`SELECT count(*) AS n FROM credit_ledger WHERE task_id = ? AND kind = 'reserve' AND item LIKE ? || ':%'`);
  const event = db.prepare(`INSERT INTO task_events (task_id, at, kind, actor, detail) VALUES (?, ?, 'ledger', ?, ?)`);
  const pages = {
    all: db.prepare(`SELECT * FROM credit_ledger WHERE tenant_id = @tenantId AND id < @before ORDER BY id DESC LIMIT @limit`),
    task: db.prepare(`SELECT * FROM credit_ledger WHERE tenant_id = @tenantId AND task_id = @taskId AND id < @before ORDER BY id DESC LIMIT @limit`),
  };

  const add = db.transaction((tenantId: string, amount: number, now: number, note: string | null): CreditAccount => {
    open.run(tenantId, now, now);
    const before = (account.get(tenantId) as Row).balance as number;
    const row = topUp.get({ tenantId, amount, now, before }) as Row;
    entry.run({ tenantId, taskId: null, item: null, kind: 'topup', amount: Number(row.moved), charged: null, at: now, note });
    return accountFromRow(row);
  });

  /** Takes `credits` from the tenant's balance for the task's `item`, with its entry and event, or throws. */
  function reserveItem(tenantId: string, taskId: string, item: string, credits: number, now: number): void {
    const left = take.get({ tenantId, credits, now }) as { balance: number } | undefined;
    if (!left) throw new InsufficientCreditsError(credits, Number((account.get(tenantId) as Row | undefined)?.balance ?? 0));
    // An item reserves once: a second reservation would take credits with no entry to show it.
    if (entry.run({ tenantId, taskId, item, kind: 'reserve', amount: -credits, charged: null, at: now, note: null }).changes !== 1) {
      throw new Error(`task ${taskId} has reserved its credits for ${item} already`);
    }
    event.run(taskId, now, 'api', JSON.stringify(ledgerDetail({ kind: 'reserve', item, amount: -credits, balance: left.balance })));
  }

  return {
    /** Inside a create's transaction: takes the task's charge from its tenant's balance, or throws. */
    reserve(task: Task): void {
      if (task.charge) reserveItem(task.tenantId, task.id, task.charge.item, task.charge.credits, task.createdAt);
    },
    /** Inside a rendition's ask: reserves it as its next item (`hd:1`, `hd:2` …), or throws. */
    reserveRendition(tenantId: string, taskId: string, rendition: 'hd' | 'uhd', credits: number, now: number): void {
      const n = Number((asks.get(taskId, rendition) as { n: number }).n) + 1;
      reserveItem(tenantId, taskId, `${rendition}:${n}`, credits, now);
    },
    /** Inside a commit's transaction: closes the item's open reservation, if there is one; once. */
    close(c: LedgerClose): void {
      const r = openOf.get({ taskId: c.taskId, item: c.item }) as { item: string; credits: number } | undefined;
      if (!r) return;
      const amount = c.amount ?? (c.kind === 'refund' ? r.credits : 0);
      const charged = c.charged ?? (c.kind === 'refund' ? 0 : r.credits);
      if (entry.run({ tenantId: c.tenantId, taskId: c.taskId, item: r.item, kind: c.kind, amount, charged, at: c.at, note: c.reason }).changes === 0) return;
      const left = give.get({ tenantId: c.tenantId, amount, at: c.at }) as { balance: number } | undefined;
      event.run(c.taskId, c.at, 'engine', JSON.stringify(ledgerDetail({ kind: c.kind, item: r.item, amount, charged, balance: left?.balance ?? null, reason: c.reason })));
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
