import type { Database, Statement } from 'better-sqlite3';
import type { Task } from '../../../core/task.js';
import { KeyLostError, type OnceAnswer, type TaskPage } from '../../port.js';
import { artifactFromRow, attemptFromRow, eventFromRow } from '../../sql/columns.js';
import { CANCELED_MESSAGE, canceledStageSql, filterSql, type SearchSql } from '../../sql/columns.js';
import { taskFromRow, taskToRow } from '../rows.js';
import { grouped } from '../group.js';

type Row = Record<string, unknown>;


/** A prompt holds the search text: a position test on the prompt of the task's spec (JSON text). */
const SEARCH: SearchSql = (row, needle) => `instr(lower(json_extract(${row}spec, '$.prompt')), ${needle}) > 0`;

export function taskOps(
  db: Database,
  answerKey: (once: OnceAnswer) => boolean,
  credits: { reserve(task: Task): void; reserveRendition(tenantId: string, taskId: string, rendition: 'hd' | 'uhd', credits: number, now: number): void },
) {
  const { reserve } = credits;
  const insert = db.prepare(
    `INSERT INTO tasks (id, tenant_id, dialect, model, spec, request, state, enhanced_prompt, images,
       provider, upstream_id, attempt_count, retry_count, max_retries, error_sleep_ms, last_error,
       last_error_kind, failure_stage, callback_url, file_token, hd_state, progress, created_at,
       updated_at, completed_at, deadline_at, next_run_at, route_index, submitted_at, fallback, result_url, uhd_state, uhd_callback_url, cancel_outcome, delete_requested, charge, lease_owner, lease_until)
     VALUES (@id, @tenant_id, @dialect, @model, @spec, @request, @state, @enhanced_prompt, @images,
       @provider, @upstream_id, @attempt_count, @retry_count, @max_retries, @error_sleep_ms, @last_error,
       @last_error_kind, @failure_stage, @callback_url, @file_token, @hd_state, @progress, @created_at,
       @updated_at, @completed_at, @deadline_at, @next_run_at, @route_index, @submitted_at, @fallback, @result_url, @uhd_state, @uhd_callback_url, @cancel_outcome, @delete_requested, @charge, @lease_owner, @lease_until)
     ON CONFLICT (id) DO NOTHING`,
  );
  const byId = db.prepare(`SELECT * FROM tasks WHERE id = ? AND tenant_id = ?`);
  // One statement: the count and the mark cannot be split by another writer (one per file). The
  // places go oldest first: the tenant's older tasks still waiting count as taken.
  // Each count stops at the limit (its own partial index, migration 014).
  const admit = db.prepare(
    `UPDATE tasks AS t SET admitted = 1 WHERE t.id = @id AND (t.admitted = 1 OR
       (SELECT count(*) FROM (SELECT 1 FROM tasks o WHERE o.tenant_id = @tenantId
          AND o.state NOT IN ('succeeded', 'failed', 'canceled', 'expired') AND (o.state <> 'queued' OR o.admitted = 1) LIMIT @limit))
       + (SELECT count(*) FROM (SELECT 1 FROM tasks w WHERE w.tenant_id = @tenantId AND w.state = 'queued' AND w.admitted = 0
          AND (w.created_at, w.id) < (t.created_at, t.id) LIMIT @limit)) < @limit)`,
  );
  // A leased task is woken too: should its engine be dead, it is due as soon as the lease ends (a
  // live engine keeps its own schedule and overwrites this with its next commit).
  const wake = db.prepare(
    `UPDATE tasks SET next_run_at = @now
     WHERE provider = @provider AND upstream_id = @upstreamId AND next_run_at > @now`,
  );
  const hd = db.prepare(
    `UPDATE tasks SET hd_state = 'pending', next_run_at = @now, updated_at = @now
     WHERE id = @id AND tenant_id = @tenantId AND state = 'succeeded' AND hd_state IN ('none', 'failed')`,
  );
  const uhd = db.prepare(
    `UPDATE tasks SET uhd_state = 'pending', uhd_callback_url = @callbackUrl, next_run_at = @now, updated_at = @now
     WHERE id = @id AND tenant_id = @tenantId AND state = 'succeeded' AND uhd_state IN ('none', 'failed')`,
  );
  // The lease goes with the cancel, so a step running now cannot commit; a finished job waiting
  // for its download leaves the fetch lane (the cancel step runs in the steps lane).
  const cancel = db.prepare(
    `UPDATE tasks SET state = 'canceled', cancel_outcome = 'pending', delete_requested = @deleteAfter,
       completed_at = @now, updated_at = @now, next_run_at = @now, lease_owner = NULL, lease_until = NULL, result_url = NULL,
       last_error = @message, last_error_kind = 'canceled',
       failure_stage = ${canceledStageSql()}
     WHERE id = @id AND tenant_id = @tenantId AND state NOT IN ('succeeded', 'failed', 'canceled', 'expired')`,
  );
  const deleteLater = db.prepare(
    `UPDATE tasks SET delete_requested = 1 WHERE id = ? AND tenant_id = ? AND state = 'canceled' AND cancel_outcome = 'pending'`,
  );
  const cancelEvent = db.prepare(
    `INSERT INTO task_events (task_id, at, kind, actor, from_state, to_state, detail) VALUES (?, ?, 'state', 'api', ?, 'canceled', ?)`,
  );
  const cancelTask = db.transaction((tenantId: string, id: string, now: number, deleteAfter: boolean) => {
    const before = byId.get(id, tenantId) as Row | undefined;
    const canceled = cancel.run({ id, tenantId, now, deleteAfter: deleteAfter ? 1 : 0, message: CANCELED_MESSAGE }).changes === 1;
    if (canceled) cancelEvent.run(id, now, before!.state, JSON.stringify({ reason: deleteAfter ? 'deleted by the client while it ran' : 'canceled by the client' }));
    if (!canceled && deleteAfter) deleteLater.run(id, tenantId);
    const row = byId.get(id, tenantId) as Row | undefined;
    return row && { task: taskFromRow(row), canceled, ...(canceled ? { before: before!.state as Task['state'] } : {}) };
  });
  const cursor = db.prepare(`SELECT created_at, id FROM tasks WHERE id = ? AND tenant_id = ?`);
  const cursorAny = db.prepare(`SELECT created_at, id FROM tasks WHERE id = ?`);
  const pages = {
    asc: db.prepare(`SELECT * FROM tasks WHERE tenant_id = @tenantId ORDER BY created_at, id LIMIT @limit`),
    desc: db.prepare(`SELECT * FROM tasks WHERE tenant_id = @tenantId ORDER BY created_at DESC, id DESC LIMIT @limit`),
    ascAfter: db.prepare(
      `SELECT * FROM tasks WHERE tenant_id = @tenantId AND (created_at, id) > (@createdAt, @id) ORDER BY created_at, id LIMIT @limit`,
    ),
    descAfter: db.prepare(
      `SELECT * FROM tasks WHERE tenant_id = @tenantId AND (created_at, id) < (@createdAt, @id) ORDER BY created_at DESC, id DESC LIMIT @limit`,
    ),
  };
  // Not while a rendition asked for is owed (its reservation is closed by the step that makes it).
  const deletable = db.prepare(`SELECT id FROM tasks WHERE id = ? AND tenant_id = ? AND state IN ('succeeded', 'failed', 'canceled', 'expired') AND lease_owner IS NULL
       AND (cancel_outcome IS NULL OR cancel_outcome <> 'pending') AND hd_state <> 'pending' AND uhd_state <> 'pending'`);
  const dropTask = db.prepare(`DELETE FROM tasks WHERE id = ?`);
  const dropAttempts = db.prepare(`DELETE FROM attempts WHERE task_id = ?`);
  // What the task still owes is sent all the same (OpenAI DELETE of a video being made owes its
  // cancel); each such delivery goes once done (`finishDelivery`).
  const dropDeliveries = db.prepare(`DELETE FROM deliveries WHERE task_id = ? AND status <> 'pending'`);
  const dropArtifacts = db.prepare(`DELETE FROM artifacts WHERE task_id = ?`);
  const dropEvents = db.prepare(`DELETE FROM task_events WHERE task_id = ?`);
  const remove = db.transaction((tenantId: string, id: string): boolean => {
    if (!deletable.get(id, tenantId)) return false;
    dropTask.run(id);
    dropAttempts.run(id);
    dropDeliveries.run(id);
    dropArtifacts.run(id);
    dropEvents.run(id);
    return true;
  });
  const events = db.prepare(`SELECT * FROM task_events WHERE task_id = ? ORDER BY id`);
  const changed = db.prepare(`SELECT * FROM tasks WHERE tenant_id = ? AND updated_at >= ? ORDER BY updated_at, id LIMIT ?`);
  const attempts = db.prepare(`SELECT * FROM attempts WHERE task_id = ? ORDER BY n`);
  const inFlight = db.prepare(
    `SELECT provider, COUNT(*) AS n FROM tasks WHERE state = 'generating' AND upstream_id IS NOT NULL GROUP BY provider`,
  );
  const artifacts = db.prepare(`SELECT * FROM artifacts WHERE task_id = ? ORDER BY kind`);

  // A rendition's ask, and its reservation when it is priced: both or neither.
  const askHd = db.transaction((tenantId: string, id: string, now: number, price: number | undefined): boolean => {
    const asked = hd.run({ id, tenantId, now }).changes === 1;
    if (asked && price) credits.reserveRendition(tenantId, id, 'hd', price, now);
    return asked;
  });
  const askUhd = db.transaction((tenantId: string, id: string, now: number, callbackUrl: string | null, price: number | undefined): boolean => {
    const asked = uhd.run({ id, tenantId, now, callbackUrl }).changes === 1;
    if (asked && price) credits.reserveRendition(tenantId, id, 'uhd', price, now);
    return asked;
  });

  // Creates that arrive in the same turn of the event loop share one transaction (group commit).
  const create = grouped(db, (task: Task, lease?: { owner: string; until: number }): boolean =>
    insert.run({ ...taskToRow(task), lease_owner: lease?.owner ?? null, lease_until: lease?.until ?? null }).changes === 1, { single: true });
  // A create with its reservation or its idempotency key's answer: all or nothing (its own savepoint).
  const createWhole = grouped(db, (task: Task, lease: { owner: string; until: number } | undefined, once: OnceAnswer | undefined): boolean => {
    if (insert.run({ ...taskToRow(task), lease_owner: lease?.owner ?? null, lease_until: lease?.until ?? null }).changes !== 1) return false;
    reserve(task);
    if (once && !answerKey(once)) throw new KeyLostError(once.ref);
    return true;
  });

  // A filtered page: one statement per shape of filter (its text names no value), kept.
  const shapes = new Map<string, Statement>();
  function filtered(tenantId: string | null, page: TaskPage): Task[] | undefined {
    const values: unknown[] = [];
    const param = (v: unknown) => (values.push(v), '?');
    // Every tenant's (an operator's view): no tenant condition.
    const tenant = tenantId === null ? '1 = 1' : `tenant_id = ${param(tenantId)}`;
    let after = '';
    if (page.after !== undefined) {
      const at = (tenantId === null ? cursorAny.get(page.after) : cursor.get(page.after, tenantId)) as { created_at: number; id: string } | undefined;
      if (!at) return undefined;
      after = ` AND (created_at, id) ${page.order === 'asc' ? '>' : '<'} (${param(at.created_at)}, ${param(at.id)})`;
    }
    const where = filterSql(page.filter, param, SEARCH);
    const dir = page.order === 'asc' ? '' : ' DESC';
    const text = `SELECT * FROM tasks WHERE ${tenant}${after}${where} ORDER BY created_at${dir}, id${dir} LIMIT ${param(page.limit)}`;
    let stmt = shapes.get(text);
    if (!stmt) {
      stmt = db.prepare(text);
      // Shapes are few (which filters, how many states); past a bound they are not kept.
      if (shapes.size < 256) shapes.set(text, stmt);
    }
    return (stmt.all(...values) as Row[]).map(taskFromRow);
  }

  return {
    createTask: (task: Task, lease?: { owner: string; until: number }, once?: OnceAnswer): Promise<boolean> =>
      once || task.charge ? createWhole(task, lease, once) : create(task, lease),
    getTask(tenantId: string, id: string): Task | undefined {
      const row = byId.get(id, tenantId) as Row | undefined;
      return row && taskFromRow(row);
    },
    admitTenant(tenantId: string, taskId: string, limit: number): boolean {
      return admit.run({ id: taskId, tenantId, limit }).changes === 1;
    },
    countInFlight(): Record<string, number> {
      return Object.fromEntries((inFlight.all() as { provider: string; n: number }[]).map((r) => [r.provider, r.n]));
    },
    wakeByUpstream(provider: string, upstreamId: string, now: number): void {
      wake.run({ provider, upstreamId, now });
    },
    requestHd(tenantId: string, id: string, now: number, price?: number): Task | undefined {
      askHd.immediate(tenantId, id, now, price);
      const row = byId.get(id, tenantId) as Row | undefined;
      return row && taskFromRow(row);
    },
    requestUhd(tenantId: string, id: string, now: number, callbackUrl: string | null, price?: number): { task: Task; asked: boolean } | undefined {
      const asked = askUhd.immediate(tenantId, id, now, callbackUrl, price);
      const row = byId.get(id, tenantId) as Row | undefined;
      return row && { task: taskFromRow(row), asked };
    },
    cancelTask(tenantId: string, id: string, now: number, deleteAfter: boolean): { task: Task; canceled: boolean; before?: Task['state'] } | undefined {
      return cancelTask.immediate(tenantId, id, now, deleteAfter);
    },
    listTasks(tenantId: string | null, page: TaskPage): Task[] | undefined {
      let rows: Row[];
      if (page.filter || tenantId === null) return filtered(tenantId, page);
      if (page.after === undefined) rows = pages[page.order].all({ tenantId, limit: page.limit }) as Row[];
      else {
        const at = cursor.get(page.after, tenantId) as { created_at: number; id: string } | undefined;
        if (!at) return undefined;
        const stmt = page.order === 'asc' ? pages.ascAfter : pages.descAfter;
        rows = stmt.all({ tenantId, limit: page.limit, createdAt: at.created_at, id: at.id }) as Row[];
      }
      return rows.map(taskFromRow);
    },
    deleteTask(tenantId: string, id: string): boolean {
      return remove.immediate(tenantId, id);
    },
    listAttempts(taskId: string) {
      return (attempts.all(taskId) as Row[]).map(attemptFromRow);
    },
    changedTasks(tenantId: string, since: number, limit: number): Task[] {
      return (changed.all(tenantId, since, limit) as Row[]).map(taskFromRow);
    },
    listEvents(taskId: string) {
      return (events.all(taskId) as Row[]).map(eventFromRow);
    },
    listArtifacts(taskId: string) {
      return (artifacts.all(taskId) as Row[]).map(artifactFromRow);
    },
  };
}
