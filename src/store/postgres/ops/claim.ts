import type { Task } from '../../../core/task.js';
import type { ClaimLane, StepCommit, TaskPatch } from '../../port.js';
import { PATCH_COLUMNS } from '../../sql/columns.js';
import type { Db } from '../db.js';
import { PATCH_TYPES, patchValue, taskFromRow } from '../rows.js';

/**
 * One claim statement per lane: tasks whose lease ran out first (through `tasks_leased`), then
 * free due tasks (through the lane's partial index), up to the limit. FOR UPDATE SKIP LOCKED: a
 * task another claim is taking is skipped, not waited for, and one that another claim took since
 * this statement began is re-read and dropped, so a task goes to exactly one owner.
 * $1 owner, $2 now, $3 lease end, $4 limit.
 */
function claimText(lane: ClaimLane): string {
  const mine = lane === 'fetch' ? 'result_url IS NOT NULL' : 'result_url IS NULL';
  return `WITH expired AS (
      SELECT id FROM tasks
      WHERE lease_owner IS NOT NULL AND lease_until < $2 AND next_run_at <= $2 AND ${mine}
      ORDER BY lease_until LIMIT $4
      FOR UPDATE SKIP LOCKED),
    free AS (
      SELECT id FROM tasks
      WHERE next_run_at <= $2 AND lease_owner IS NULL AND ${mine}
      ORDER BY next_run_at LIMIT $4 - (SELECT count(*) FROM expired)
      FOR UPDATE SKIP LOCKED),
    due AS (SELECT id FROM expired UNION ALL SELECT id FROM free)
    UPDATE tasks t SET lease_owner = $1, lease_until = $3 FROM due WHERE t.id = due.id
    RETURNING t.*`;
}
const CLAIMS: Record<ClaimLane, string> = { steps: claimText('steps'), fetch: claimText('fetch') };

/** Commit shapes get a named statement each, up to this many; past it they run unnamed. */
const MAX_NAMED_COMMITS = 500;
const UNIQUE_VIOLATION = '23505';

/**
 * A step's commit as one statement: the fenced UPDATE of the task, and the attempt, artifacts and
 * deliveries inserted by selecting from its result, so when the fence refuses (no row) nothing is
 * inserted, and otherwise all of it is, atomically.
 */
function commitStatement(owner: string, c: StepCommit, off: number): { text: string; values: unknown[] } {
  const values: unknown[] = [c.taskId, owner];
  const param = (v: unknown, type: string) => {
    // Times may come with a fraction of a millisecond (a spread poll delay): bigint takes whole ones.
    values.push(v === undefined ? null : type === 'bigint' && typeof v === 'number' ? Math.round(v) : type === 'bigint[]' && Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? Math.round(x) : x)) : v);
    return `$${values.length}::${type}`;
  };
  const fields = (Object.keys(c.patch) as (keyof TaskPatch)[]).sort();
  const ref = new Map<string, string>(fields.map((f) => [f, param(patchValue(f, c.patch[f], off), PATCH_TYPES[f])]));
  const after = (field: keyof TaskPatch, column: string) => ref.get(field) ?? column;
  const sets = fields.map((f) =>
    f === 'nextRunAt'
      ? // A rendition asked for while this step ran (or still owed after it) keeps a succeeded task
        // due: 0 is "at once". SET reads the row as it was before this UPDATE.
        `next_run_at = CASE WHEN ${ref.get(f)} IS NULL AND ${after('state', 'state')} = 'succeeded'
           AND (${after('hdState', 'hd_state')} = 'pending' OR ${after('uhdState', 'uhd_state')} = 'pending') THEN 0 ELSE ${ref.get(f)} END`
      : `${PATCH_COLUMNS[f]} = ${ref.get(f)}`,
  );
  // A submission slot taken for this step (admitSubmission) ends with the step: the job it was
  // for is now the task's upstream job, or there is none.
  sets.push('slot_provider = NULL');
  if (c.keepLeaseUntil !== undefined) sets.push(`lease_until = ${param(c.keepLeaseUntil + off, 'bigint')}`);
  else if (!c.keepLease) sets.push('lease_owner = NULL', 'lease_until = NULL');

  const ctes = [`t AS (UPDATE tasks SET ${sets.join(', ')} WHERE id = $1 AND lease_owner = $2 RETURNING id)`];
  if (c.attempt) {
    const a = c.attempt;
    const task = param(a.taskId, 'text');
    ctes.push(`a AS (INSERT INTO attempts (task_id, n, step, provider, upstream_id, started_at, ended_at, outcome, error)
      SELECT ${task}, COALESCE((SELECT max(n) FROM attempts WHERE task_id = ${task}), 0) + 1, ${param(a.step, 'text')},
        ${param(a.provider, 'text')}, ${param(a.upstreamId, 'text')}, ${param(a.startedAt, 'bigint')}, ${param(a.endedAt, 'bigint')},
        ${param(a.outcome, 'text')}, ${param(a.error, 'text')} FROM t)`);
  }
  if (c.artifacts?.length) {
    // The last of a kind wins, as it would inserted one by one (one statement cannot upsert a row twice).
    const list = [...new Map(c.artifacts.map((x) => [`${x.taskId}\0${x.kind}`, x])).values()];
    const col = <K extends keyof (typeof list)[number]>(k: K, type: string) => param(list.map((x) => x[k]), `${type}[]`);
    ctes.push(`r AS (INSERT INTO artifacts (task_id, kind, path, content_type, bytes, width, height, duration_ms, codec, created_at)
      SELECT x.* FROM t, unnest(${col('taskId', 'text')}, ${col('kind', 'text')}, ${col('path', 'text')}, ${col('contentType', 'text')},
        ${col('bytes', 'bigint')}, ${col('width', 'integer')}, ${col('height', 'integer')}, ${col('durationMs', 'integer')},
        ${col('codec', 'text')}, ${col('createdAt', 'bigint')}) AS x
      ON CONFLICT (task_id, kind) DO UPDATE SET path = excluded.path, content_type = excluded.content_type,
        bytes = excluded.bytes, width = excluded.width, height = excluded.height, duration_ms = excluded.duration_ms,
        codec = excluded.codec, created_at = excluded.created_at)`);
  }
  const owed = c.deliveries ?? [];
  if (owed.length) {
    const col = (f: (d: (typeof owed)[number]) => unknown, type: string) => param(owed.map(f), `${type}[]`);
    const leased = param(c.deliveriesLeasedUntil === undefined ? null : c.deliveriesLeasedUntil + off, 'bigint');
    // Ids come from the identity in insertion order, which ORDER BY x.n fixes.
    ctes.push(`d AS (INSERT INTO deliveries (task_id, url, body, created_at, next_attempt_at, lease_until)
      SELECT x.task_id, x.url, x.body, x.created_at, x.next_attempt_at, ${leased}
      FROM t, unnest(${col((d) => d.taskId, 'text')}, ${col((d) => d.url, 'text')}, ${col((d) => d.body, 'text')},
        ${col((d) => d.createdAt, 'bigint')}, ${col((d) => d.createdAt + off, 'bigint')})
        WITH ORDINALITY AS x(task_id, url, body, created_at, next_attempt_at, n)
      ORDER BY x.n
      RETURNING id)`);
  }
  const ids = owed.length ? ', (SELECT json_agg(id ORDER BY id) FROM d) AS ids' : '';
  return { text: `WITH ${ctes.join(',\n')}\nSELECT (SELECT count(*) FROM t) AS updated${ids}`, values };
}

/** Claiming due tasks under a lease, extending leases, and committing a step's result. */
export function claimOps(db: Db) {
  const commitNames = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = commitNames.get(text);
    if (!name && commitNames.size < MAX_NAMED_COMMITS) commitNames.set(text, (name = `reelay_commit_${commitNames.size}`));
    return name;
  };

  async function commitOnce(owner: string, c: StepCommit, off: number): Promise<boolean> {
    const { text, values } = commitStatement(owner, c, off);
    const name = nameOf(text);
    const { rows } = await db.query<{ updated: number; ids?: number[] | null }>(name ?? 'reelay_commit', text, values, name !== undefined);
    const row = rows[0]!;
    if (row.updated !== 1) return false;
    (c.deliveries ?? []).forEach((d, i) => (d.id = row.ids![i]));
    return true;
  }

  return {
    async claimDue(owner: string, now: number, leaseMs: number, limit: number, lane: ClaimLane = 'steps'): Promise<Task[]> {
      const off = await db.offset();
      const { rows } = await db.query(`reelay_claim_${lane}`, CLAIMS[lane], [owner, Math.round(now + off), Math.round(now + off + leaseMs), limit]);
      return rows.map((r) => taskFromRow(r, off)).sort((a, b) => (a.nextRunAt ?? 0) - (b.nextRunAt ?? 0));
    },
    async extendLeases(owner: string, ids: string[], until: number): Promise<string[]> {
      if (ids.length === 0) return [];
      const off = await db.offset();
      const { rows } = await db.query<{ id: string }>(
        'reelay_extend',
        `UPDATE tasks SET lease_until = GREATEST(lease_until, $3) WHERE id = ANY($1::text[]) AND lease_owner = $2 RETURNING id`,
        [ids, owner, Math.round(until + off)],
      );
      const held = new Set(rows.map((r) => r.id));
      return ids.filter((id) => held.has(id));
    },
    async releaseLeases(owner: string, ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      await db.query(
        'reelay_release',
        `UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE id = ANY($1::text[]) AND lease_owner = $2`,
        [ids, owner],
      );
    },
    async commitStep(owner: string, c: StepCommit): Promise<boolean> {
      const off = await db.offset();
      // The attempt's number is the task's next free one as this statement's snapshot sees it. Two
      // commits of one task at once (one owner) serialize on the task's row, and the second may
      // then take the first's number: its statement fails as a whole, and runs again.
      for (let tries = 1; ; tries++) {
        try {
          return await commitOnce(owner, c, off);
        } catch (e) {
          const err = e as { code?: string; constraint?: string };
          if (tries >= 3 || err.code !== UNIQUE_VIOLATION || err.constraint !== 'attempts_pkey') throw e;
        }
      }
    },
  };
}
