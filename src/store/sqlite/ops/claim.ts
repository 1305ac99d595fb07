import type { Database, Statement } from 'better-sqlite3';
import type { LedgerClose } from '../../../core/credits.js';
import type { Task } from '../../../core/task.js';
import type { ClaimLane, StepCommit } from '../../port.js';
import { grouped } from '../group.js';
import { PATCH_COLUMNS } from '../../sql/columns.js';
import { patchValue, taskFromRow } from '../rows.js';

type Row = Record<string, unknown>;

/** Claiming due tasks under a lease, extending leases, and committing a step's result. */
export function claimOps(db: Database, close: (c: LedgerClose) => void) {
  // SQLite has one writer at a time, so the sub-select and the update cannot interleave with another
  // claim: a task goes to exactly one owner. Each lane (steps; downloads of finished jobs) reads
  // free tasks and tasks whose lease ran out through partial indexes (migrations 003, 004), so no
  // claim walks over tasks that are held or belong to the other lane.
  const claimFor = (lane: ClaimLane) => {
    const mine = lane === 'fetch' ? 'result_url IS NOT NULL' : 'result_url IS NULL';
    return {
      free: db.prepare(
        `UPDATE tasks SET lease_owner = @owner, lease_until = @until
         WHERE id IN (
           SELECT id FROM tasks
           WHERE next_run_at <= @now AND lease_owner IS NULL AND ${mine}
           ORDER BY next_run_at LIMIT @limit)
         RETURNING *`,
      ),
      expired: db.prepare(
        `UPDATE tasks SET lease_owner = @owner, lease_until = @until
         WHERE id IN (
           SELECT id FROM tasks
           WHERE lease_owner IS NOT NULL AND lease_until < @now AND next_run_at <= @now AND ${mine}
           ORDER BY lease_until LIMIT @limit)
         RETURNING *`,
      ),
    };
  };
  const claims = { steps: claimFor('steps'), fetch: claimFor('fetch') };
  const extend = db.prepare(
    `UPDATE tasks SET lease_until = MAX(lease_until, @until) WHERE id = @id AND lease_owner = @owner RETURNING id`,
  );
  const release = db.prepare(`UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE id = @id AND lease_owner = @owner`);
  const extendAll = db.transaction((owner: string, ids: string[], until: number): string[] => {
    const held: string[] = [];
    for (const id of ids) if (extend.get({ id, owner, until })) held.push(id);
    return held;
  });
  const releaseAll = db.transaction((owner: string, ids: string[]): void => {
    for (const id of ids) release.run({ id, owner });
  });
  const insertAttempt = db.prepare(
    `INSERT INTO attempts (task_id, n, step, provider, upstream_id, started_at, ended_at, outcome, error)
     VALUES (@taskId, (SELECT COALESCE(MAX(n), 0) + 1 FROM attempts WHERE task_id = @taskId),
       @step, @provider, @upstreamId, @startedAt, @endedAt, @outcome, @error)`,
  );
  const insertArtifact = db.prepare(
    `INSERT OR REPLACE INTO artifacts (task_id, kind, path, content_type, bytes, width, height, duration_ms, codec, created_at)
     VALUES (@taskId, @kind, @path, @contentType, @bytes, @width, @height, @durationMs, @codec, @createdAt)`,
  );
  const insertEvent = db.prepare(
    `INSERT INTO task_events (task_id, at, kind, actor, from_state, to_state, detail) VALUES (@taskId, @at, @kind, @actor, @from, @to, @detail)`,
  );
  const insertDelivery = db.prepare(
    `INSERT INTO deliveries (task_id, tenant_id, endpoint_id, url, body, created_at, next_attempt_at, lease_until)
     VALUES (@taskId, (SELECT tenant_id FROM tasks WHERE id = @taskId), @endpointId, @url, @body, @createdAt, @createdAt, @leaseUntil)`,
  );

  // One prepared UPDATE per distinct set of patched fields.
  const updates = new Map<string, Statement>();
  function updateFor(fields: string[], lease: 'release' | 'extend' | 'keep', ofCanceled: boolean): Statement {
    const key = `${fields.join(',')}+${lease}${ofCanceled ? '+canceled' : ''}`;
    let stmt = updates.get(key);
    if (!stmt) {
      const after = (field: string, column: string) => (fields.includes(field) ? `@${field}` : column);
      const sets = fields.map((f) =>
        f === 'nextRunAt'
          ? // A rendition asked for while this step ran (or still owed after it) keeps a succeeded
            // task due: 0 is "at once". SET reads the row as it was before this UPDATE.
            `next_run_at = CASE WHEN @nextRunAt IS NULL AND ${after('state', 'state')} = 'succeeded'
               AND (${after('hdState', 'hd_state')} = 'pending' OR ${after('uhdState', 'uhd_state')} = 'pending') THEN 0 ELSE @nextRunAt END`
          : `${PATCH_COLUMNS[f as keyof typeof PATCH_COLUMNS]} = @${f}`,
      );
      const leaseSets = lease === 'extend' ? ['lease_until = @keepLeaseUntil'] : lease === 'release' ? ['lease_owner = NULL', 'lease_until = NULL'] : [];
      stmt = db.prepare(
        `UPDATE tasks SET ${[...sets, ...leaseSets].join(', ') || 'lease_until = lease_until'}
         WHERE id = @taskId AND lease_owner = @owner AND state ${ofCanceled ? '=' : '<>'} 'canceled'`,
      );
      updates.set(key, stmt);
    }
    return stmt;
  }

  // Commits of steps that end in the same turn of the event loop share one transaction.
  const commit = grouped(db, (owner: string, c: StepCommit): boolean => {
    const fields = Object.keys(c.patch).sort();
    const params: Record<string, unknown> = { taskId: c.taskId, owner };
    for (const f of fields) params[f] = patchValue(f, c.patch[f as keyof typeof c.patch]);
    const lease = c.keepLeaseUntil !== undefined ? 'extend' : c.keepLease ? 'keep' : 'release';
    if (lease === 'extend') params.keepLeaseUntil = c.keepLeaseUntil;
    if (updateFor(fields, lease, c.ofCanceled === true).run(params).changes !== 1) return false;
    if (c.attempt) {
      const { n: _ignored, ...attempt } = c.attempt;
      insertAttempt.run(attempt);
    }
    for (const a of c.artifacts ?? []) insertArtifact.run(a);
    for (const e of c.events ?? []) insertEvent.run({ ...e, detail: e.detail === null ? null : JSON.stringify(e.detail) });
    if (c.close) close(c.close);
    for (const d of c.deliveries ?? []) {
      d.id = Number(insertDelivery.run({ taskId: d.taskId, endpointId: d.endpointId ?? null, url: d.url, body: d.body, createdAt: d.createdAt, leaseUntil: c.deliveriesLeasedUntil ?? null }).lastInsertRowid);
    }
    return true;
  });

  return {
    claimDue(owner: string, now: number, leaseMs: number, limit: number, lane: ClaimLane = 'steps'): Task[] {
      const params = { owner, now, until: now + leaseMs, limit };
      const rows = claims[lane].expired.all(params) as Row[];
      if (rows.length < limit) rows.push(...(claims[lane].free.all({ ...params, limit: limit - rows.length }) as Row[]));
      return rows.map(taskFromRow).sort((a, b) => (a.nextRunAt ?? 0) - (b.nextRunAt ?? 0));
    },
    extendLeases(owner: string, ids: string[], until: number): string[] {
      return extendAll(owner, ids, until);
    },
    releaseLeases(owner: string, ids: string[]): void {
      releaseAll(owner, ids);
    },
    commitStep(owner: string, c: StepCommit): Promise<boolean> {
      return commit(owner, c);
    },
  };
}
