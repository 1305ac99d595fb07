import type { Task } from '../../../core/task.js';
import { KeyLostError, type OnceAnswer, type TaskPage } from '../../port.js';
import type { Db, Row } from '../db.js';
import { artifactFromRow, attemptFromRow, eventFromRow } from '../../sql/columns.js';
import { batched } from '../batch.js';
import { CANCELED_MESSAGE, canceledStageSql, filterSql, type SearchSql } from '../../sql/columns.js';
import { reserveIn, reserveRenditionIn } from './credits.js';
import { answerIn } from './idempotency.js';
import { TASK_COLUMNS, TASK_TYPES, taskFromRow, taskValues } from '../rows.js';

// The creates of one turn in one statement: a column array each. RETURNING names the rows inserted.
const INSERT = `INSERT INTO tasks (${TASK_COLUMNS.join(', ')}, lease_owner, lease_until)
  SELECT * FROM unnest(${[...TASK_TYPES, 'text', 'bigint'].map((type, i) => `$${i + 1}::${type}[]`).join(', ')})
  ON CONFLICT (id) DO NOTHING
  RETURNING id`;

type NewTask = { task: Task; lease?: { owner: string; until: number } };
const BY_ID = `SELECT * FROM tasks WHERE id = $1 AND tenant_id = $2`;

/**
 * The reads of one turn in one statement, each against the row version it was last read at
 * (`xmin`, the transaction that wrote the row as it is now: every change writes a new version).
 * A row whose version is the one given comes back as its id and version only, all else NULL; a
 * changed (or unknown) one comes back whole. $1 ids, $2 the versions known (NULL: none).
 */
const READ = `SELECT k.id AS known_id, t.xmin::text AS v, f.*
  FROM unnest($1::text[], $2::text[]) AS k(id, v)
  JOIN tasks t ON t.id = k.id
  LEFT JOIN LATERAL (SELECT t.* WHERE t.xmin::text IS DISTINCT FROM k.v) f ON true`;
/** Tasks kept with their row version at most (the oldest go first), and for how long. */
const READ_MEMO_ENTRIES = 10_000;
const READ_MEMO_MS = 10 * 60_000;

/** A task as last read: its row version, the clock offset it was converted with, when. */
interface Read {
  v: string;
  off: number;
  at: number;
  task: Task;
}

const PAGES = {
  asc: `SELECT * FROM tasks WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`,
  desc: `SELECT * FROM tasks WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
  // The cursor's (created_at, id) is read in the same statement: an unknown cursor is no row at all.
  ascAfter: `WITH c AS (SELECT created_at, id FROM tasks WHERE id = $3 AND tenant_id = $1)
    SELECT t.* FROM c LEFT JOIN LATERAL (
      SELECT * FROM tasks WHERE tenant_id = $1 AND (created_at, id) > (c.created_at, c.id) ORDER BY created_at, id LIMIT $2) t ON true`,
  descAfter: `WITH c AS (SELECT created_at, id FROM tasks WHERE id = $3 AND tenant_id = $1)
    SELECT t.* FROM c LEFT JOIN LATERAL (
      SELECT * FROM tasks WHERE tenant_id = $1 AND (created_at, id) < (c.created_at, c.id) ORDER BY created_at DESC, id DESC LIMIT $2) t ON true`,
};


/** A prompt holds the search text: a position test on the prompt of the task's spec (json). */
// A–Z lowered alone (`asciiLower`), whatever the database's locale: as SQLite's lower() does.
const SEARCH: SearchSql = (row, needle) => `strpos(translate(${row}spec->>'prompt', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), ${needle}) > 0`;

export function taskOps(db: Db) {
  async function byId(tenantId: string, id: string, off: number): Promise<Task | undefined> {
    const { rows } = await db.query('reelay_task_get', BY_ID, [id, tenantId]);
    return rows[0] && taskFromRow(rows[0], off);
  }

  const columnsOf = (news: NewTask[], off: number): unknown[][] => {
    const rows = news.map(({ task, lease }) => [...taskValues(task, off), lease?.owner ?? null, lease ? Math.round(lease.until + off) : null]);
    return rows[0]!.map((_, c) => rows.map((r) => r[c]));
  };
  const create = batched(async (news: NewTask[]): Promise<boolean[]> => {
    const off = await db.offset();
    const columns = columnsOf(news, off);
    const inserted = new Set((await db.query<{ id: string }>('reelay_task_insert', INSERT, columns)).rows.map((r) => r.id));
    // Of one id asked twice in a batch, only the first is the one that created it.
    return news.map(({ task }) => inserted.delete(task.id));
  }, { max: 200, out: 2 });

  // A create with its reservation or its idempotency key's answer, in one transaction: all or nothing.
  async function createWhole(news: NewTask, once: OnceAnswer | undefined): Promise<boolean> {
    const off = await db.offset();
    return db.transaction(async (q, tx) => {
      if ((await q('reelay_task_insert', INSERT, columnsOf([news], off))).rowCount !== 1) {
        tx.rollback();
        return false;
      }
      await reserveIn(q, news.task);
      if (once && !(await answerIn(q, once))) throw new KeyLostError(once.ref);
      return true;
    });
  }

  // A rendition's ask, and its reservation when it is priced, in one transaction: both or neither.
  async function ask(tenantId: string, id: string, rendition: 'hd' | 'uhd', now: number, price: number | undefined, name: string, text: string, values: unknown[]): Promise<{ rows: Row[] }> {
    if (!price) return db.query(name, text, values);
    return db.transaction(async (q) => {
      const { rows } = await q(name, text, values);
      if (rows[0]) await reserveRenditionIn(q, tenantId, id, rendition, price, now);
      return { rows };
    });
  }

  // One statement, with no lock: of two asks at once, the younger task counts the older (let
  // through, or still waiting and older), so the two cannot both take the last place. Each count
  // stops at the limit (its own partial index, migration 012).
  async function admitTenant(tenantId: string, taskId: string, limit: number): Promise<boolean> {
    const { rowCount } = await db.query(
      'reelay_tenant_admit',
      `UPDATE tasks t SET admitted = true WHERE t.id = $2 AND (t.admitted OR
         (SELECT count(*) FROM (SELECT 1 FROM tasks o WHERE o.tenant_id = $1
            AND o.state NOT IN ('succeeded', 'failed', 'canceled', 'expired') AND (o.state <> 'queued' OR o.admitted) LIMIT $3) u)
         + (SELECT count(*) FROM (SELECT 1 FROM tasks w WHERE w.tenant_id = $1 AND w.state = 'queued' AND NOT w.admitted
            AND (w.created_at, w.id) < (t.created_at, t.id) LIMIT $3) o) < $3)`,
      [tenantId, taskId, limit],
    );
    return rowCount === 1;
  }

  // Reads: the polls of one turn go as one statement, and a row that has not changed since this
  // process last read it is not sent or decoded again (its JSON columns are most of a poll's
  // work). Every read still asks the database: a task another process changed is read anew, so
  // no answer is staler than a read of the row would be.
  const memo = new Map<string, Read>();
  const read = batched(async (asks: { tenantId: string; id: string }[]): Promise<(Task | undefined)[]> => {
    const off = await db.offset();
    const now = performance.now();
    const ids = [...new Set(asks.map((a) => a.id))];
    // What was sent as known, kept here: another batch may drop or replace the entry meanwhile.
    const sent = new Map<string, Read>();
    for (const id of ids) {
      const m = memo.get(id);
      if (m && m.off === off && now - m.at < READ_MEMO_MS) sent.set(id, m);
    }
    const { rows } = await db.query('reelay_task_read', READ, [ids, ids.map((id) => sent.get(id)?.v ?? null)]);
    const found = new Map<string, Task>();
    for (const r of rows) {
      const id = r.known_id as string;
      if (r.id === null) {
        found.set(id, sent.get(id)!.task);
        continue;
      }
      const task = taskFromRow(r, off);
      found.set(id, task);
      memo.delete(id);
      if (memo.size >= READ_MEMO_ENTRIES) memo.delete(memo.keys().next().value as string);
      memo.set(id, { v: r.v as string, off, at: now, task });
    }
    for (const id of ids) if (!found.has(id)) memo.delete(id);
    return asks.map((a) => {
      const task = found.get(a.id);
      return task?.tenantId === a.tenantId ? task : undefined;
    });
  }, { max: 500, out: 4 });

  return {
    createTask: (task: Task, lease?: { owner: string; until: number }, once?: OnceAnswer): Promise<boolean> =>
      once || task.charge ? createWhole(lease ? { task, lease } : { task }, once) : create(lease ? { task, lease } : { task }),
    getTask: (tenantId: string, id: string): Promise<Task | undefined> => read({ tenantId, id }),
    admitTenant,
    async countInFlight(): Promise<Record<string, number>> {
      const { rows } = await db.query<{ provider: string; n: number }>(
        'reelay_in_flight',
        `SELECT provider, count(*) AS n FROM tasks WHERE state = 'generating' AND upstream_id IS NOT NULL GROUP BY provider`,
      );
      return Object.fromEntries(rows.map((r) => [r.provider, r.n]));
    },
    async wakeByUpstream(provider: string, upstreamId: string, now: number): Promise<void> {
      const off = await db.offset();
      // A leased task is woken too: should its engine be dead, it is due as soon as the lease ends
      // (a live engine keeps its own schedule and overwrites this with its next commit).
      await db.query(
        'reelay_wake',
        `UPDATE tasks SET next_run_at = $3 WHERE provider = $1 AND upstream_id = $2 AND next_run_at > $3`,
        [provider, upstreamId, Math.round(now + off)],
      );
    },
    async requestHd(tenantId: string, id: string, now: number, price?: number): Promise<Task | undefined> {
      const off = await db.offset();
      const { rows } = await ask(tenantId, id, 'hd', now, price,
        'reelay_request_hd',
        `UPDATE tasks SET hd_state = 'pending', next_run_at = $3, updated_at = $4
         WHERE id = $1 AND tenant_id = $2 AND state = 'succeeded' AND hd_state IN ('none', 'failed')
         RETURNING *`,
        [id, tenantId, Math.round(now + off), Math.round(now)],
      );
      return rows[0] ? taskFromRow(rows[0], off) : byId(tenantId, id, off);
    },
    async requestUhd(tenantId: string, id: string, now: number, callbackUrl: string | null, price?: number): Promise<{ task: Task; asked: boolean } | undefined> {
      const off = await db.offset();
      // Of two asks at once, the second waits for the first's row lock, then finds the rendition
      // pending and changes nothing: only one is `asked` (and reserves).
      const { rows } = await ask(tenantId, id, 'uhd', now, price,
        'reelay_request_uhd',
        `UPDATE tasks SET uhd_state = 'pending', uhd_callback_url = $5, next_run_at = $3, updated_at = $4
         WHERE id = $1 AND tenant_id = $2 AND state = 'succeeded' AND uhd_state IN ('none', 'failed')
         RETURNING *`,
        [id, tenantId, Math.round(now + off), Math.round(now), callbackUrl],
      );
      if (rows[0]) return { task: taskFromRow(rows[0], off), asked: true };
      // A statement of its own, so it sees what a concurrent ask committed.
      const task = await byId(tenantId, id, off);
      return task && { task, asked: false };
    },
    async cancelTask(tenantId: string, id: string, now: number, o?: { deleteAfter?: boolean }): Promise<{ task: Task; canceled: boolean; before?: Task['state'] } | undefined> {
      const off = await db.offset();
      const deleteAfter = o?.deleteAfter ?? false;
      // The row lock orders a cancel against a commit of the same task: the commit that came
      // first ended it (the cancel finds it terminal), or the cancel took its lease (the commit's
      // fence refuses). A finished job waiting for its download leaves the fetch lane.
      // The state it was canceled in is read under the row lock, for the audit trail.
      const { rows } = await db.query(
        'reelay_task_cancel',
        `WITH was AS (
           SELECT id, state, result_url FROM tasks
           WHERE id = $1 AND tenant_id = $2 AND state NOT IN ('succeeded', 'failed', 'canceled', 'expired') FOR UPDATE),
         c AS (
           UPDATE tasks t SET state = 'canceled', cancel_outcome = 'pending', delete_requested = $5,
             completed_at = $4, updated_at = $4, next_run_at = $3, lease_owner = NULL, lease_until = NULL, result_url = NULL,
             last_error = $6, last_error_kind = 'canceled', failure_stage = ${canceledStageSql('was.')}
           FROM was WHERE t.id = was.id
           RETURNING t.*, was.state AS was_state),
         e AS (
           INSERT INTO task_events (task_id, at, kind, actor, from_state, to_state, detail)
           SELECT id, $4, 'state', 'api', was_state, 'canceled', json_build_object('reason', $7::text) FROM c)
         SELECT * FROM c`,
        [id, tenantId, Math.round(now + off), Math.round(now), deleteAfter, CANCELED_MESSAGE, deleteAfter ? 'deleted by the client while it ran' : 'canceled by the client'],
      );
      if (rows[0]) return { task: taskFromRow(rows[0], off), canceled: true, before: rows[0].was_state as Task['state'] };
      if (deleteAfter) {
        const { rows: later } = await db.query(
          'reelay_task_delete_later',
          `UPDATE tasks SET delete_requested = true WHERE id = $1 AND tenant_id = $2 AND state = 'canceled' AND cancel_outcome = 'pending' RETURNING *`,
          [id, tenantId],
        );
        if (later[0]) return { task: taskFromRow(later[0], off), canceled: false };
      }
      // A statement of its own, so it sees what a concurrent cancel or commit wrote.
      const task = await byId(tenantId, id, off);
      return task && { task, canceled: false };
    },
    async listTasks(tenantId: string | null, page: TaskPage): Promise<Task[] | undefined> {
      const off = await db.offset();
      if (page.filter || tenantId === null) {
        // A filtered page (or every tenant's, an operator's view): its text depends on the
        // filter's shape only (values are parameters).
        const values: unknown[] = [tenantId, page.limit];
        const param = (v: unknown, type: string) => (values.push(v), `$${values.length}::${type}`);
        const dir = page.order === 'asc' ? '' : ' DESC';
        const where = (t: string) => filterSql(page.filter, param, SEARCH, `${t}.`);
        const tenant = (t: string) => (tenantId === null ? `$1::text IS NULL` : `${t}.tenant_id = $1`);
        let text: string;
        if (page.after === undefined) {
          text = `SELECT * FROM tasks t WHERE ${tenant('t')}${where('t')} ORDER BY t.created_at${dir}, t.id${dir} LIMIT $2`;
        } else {
          const cursor = param(page.after, 'text');
          text = `WITH c AS (SELECT created_at, id FROM tasks c WHERE id = ${cursor} AND ${tenant('c')})
            SELECT t.* FROM c LEFT JOIN LATERAL (
              SELECT * FROM tasks t WHERE ${tenant('t')} AND (t.created_at, t.id) ${page.order === 'asc' ? '>' : '<'} (c.created_at, c.id)${where('t')}
              ORDER BY t.created_at${dir}, t.id${dir} LIMIT $2) t ON true`;
        }
        const { rows } = await db.query<Row>('reelay_page_filtered', text, values, false);
        if (page.after !== undefined && rows.length === 0) return undefined;
        return rows.filter((r) => r.id !== null).map((r) => taskFromRow(r, off));
      }
      if (page.after === undefined) {
        const { rows } = await db.query(`reelay_page_${page.order}`, PAGES[page.order], [tenantId, page.limit]);
        return rows.map((r) => taskFromRow(r, off));
      }
      const name = page.order === 'asc' ? 'ascAfter' : 'descAfter';
      const { rows } = await db.query<Row>(`reelay_page_${name}`, PAGES[name], [tenantId, page.limit, page.after]);
      if (rows.length === 0) return undefined;
      return rows.filter((r) => r.id !== null).map((r) => taskFromRow(r, off));
    },
    async deleteTask(tenantId: string, id: string): Promise<boolean> {
      // Only a task that is not running: terminal or expired, and not leased (no rendition being made).
      const { rows } = await db.query<{ n: number }>(
        'reelay_task_delete',
        `WITH t AS (
           DELETE FROM tasks
           WHERE id = $1 AND tenant_id = $2 AND state IN ('succeeded', 'failed', 'canceled', 'expired') AND lease_owner IS NULL
             AND (cancel_outcome IS NULL OR cancel_outcome <> 'pending') AND hd_state <> 'pending' AND uhd_state <> 'pending'
           RETURNING id),
         a AS (DELETE FROM attempts WHERE task_id IN (SELECT id FROM t)),
         d AS (DELETE FROM deliveries WHERE task_id IN (SELECT id FROM t) AND status <> 'pending'),
         r AS (DELETE FROM artifacts WHERE task_id IN (SELECT id FROM t)),
         e AS (DELETE FROM task_events WHERE task_id IN (SELECT id FROM t))
         SELECT count(*) AS n FROM t`,
        [id, tenantId],
      );
      return rows[0]!.n === 1;
    },
    async listAttempts(taskId: string) {
      const { rows } = await db.query('reelay_attempts', `SELECT * FROM attempts WHERE task_id = $1 ORDER BY n`, [taskId]);
      return rows.map(attemptFromRow);
    },
    async changedTasks(tenantId: string, since: number, limit: number): Promise<Task[]> {
      const off = await db.offset();
      const { rows } = await db.query('reelay_tasks_changed', `SELECT * FROM tasks WHERE tenant_id = $1 AND updated_at >= $2 ORDER BY updated_at, id LIMIT $3`, [tenantId, Math.round(since), limit]);
      return rows.map((r) => taskFromRow(r, off));
    },
    async listEvents(taskId: string) {
      const { rows } = await db.query('reelay_events', `SELECT * FROM task_events WHERE task_id = $1 ORDER BY id`, [taskId]);
      return rows.map(eventFromRow);
    },
    async listArtifacts(taskId: string) {
      const { rows } = await db.query('reelay_artifacts', `SELECT * FROM artifacts WHERE task_id = $1 ORDER BY kind`, [taskId]);
      return rows.map(artifactFromRow);
    },
  };
}
