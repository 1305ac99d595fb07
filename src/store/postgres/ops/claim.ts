import type { Task } from '../../../core/task.js';
import type { ClaimLane, StepCommit, TaskPatch } from '../../port.js';
import { PATCH_COLUMNS } from '../../sql/columns.js';
import { batched } from '../batch.js';
import type { Db, Row } from '../db.js';
import { PATCH_TYPES, patchValue, taskFromRow } from '../rows.js';

/**
 * One claim per lane, a function of migration 003 (`reelay_claim_steps`, `reelay_claim_fetch`:
 * what they take, in which order, and why they are functions, is written there).
 * $1 owner, $2 now, $3 lease end, $4 limit.
 */
const CLAIMS: Record<ClaimLane, string> = {
  steps: 'SELECT * FROM reelay_claim_steps($1, $2, $3, $4)',
  fetch: 'SELECT * FROM reelay_claim_fetch($1, $2, $3, $4)',
};

/** Commit shapes get a named statement each, up to this many; past it they run unnamed. */
const MAX_NAMED_COMMITS = 500;
const UNIQUE_VIOLATION = '23505';
const DEADLOCK = '40P01';
/** Leases extended per statement at most. */
const LEASE_SLICE = 500;
/** Commits in one group commit at most, and group statements out at once per process. */
const MAX_GROUP = 64;
const MAX_GROUPS_OUT = 4;

/** A commit asked for, waiting for its group, with its plain shape (`plainShape`). */
interface Pending {
  owner: string;
  c: StepCommit;
  shape: string | undefined;
}

/** Whether the commit suffixed `s` applied (its fence held), and the ids of its deliveries. */
function applied(c: StepCommit, row: Row, s: string): boolean {
  if (Number(row[`updated${s}`]) !== 1) return false;
  const ids = row[`ids${s}`] as number[] | null | undefined;
  (c.deliveries ?? []).forEach((d, i) => (d.id = ids![i]!));
  return true;
}

/**
 * The SET clauses of a step commit: each patched field (`value` gives its new value), with the
 * rule for a rendition still owed, the end of the submission slot, and the lease. `old` names a
 * column as the row was before the UPDATE; `until` is the new lease end, for `keepLeaseUntil`.
 */
function commitSets(fields: (keyof TaskPatch)[], value: (f: keyof TaskPatch) => string, old: (column: string) => string, c: StepCommit, until: string | undefined): string[] {
  const after = (field: keyof TaskPatch, column: string) => (fields.includes(field) ? value(field) : old(column));
  const sets = fields.map((f) =>
    f === 'nextRunAt'
      ? // A rendition asked for while this step ran (or still owed after it) keeps a succeeded task
        // due: 0 is "at once". SET reads the row as it was before this UPDATE.
        `next_run_at = CASE WHEN ${value(f)} IS NULL AND ${after('state', 'state')} = 'succeeded'
           AND (${after('hdState', 'hd_state')} = 'pending' OR ${after('uhdState', 'uhd_state')} = 'pending') THEN 0 ELSE ${value(f)} END`
      : `${PATCH_COLUMNS[f]} = ${value(f)}`,
  );
  // A submission slot taken for this step (admitSubmission) ends with the step: the job it was
  // for is now the task's upstream job, or there is none.
  sets.push('slot_provider = NULL');
  if (c.keepLeaseUntil !== undefined) sets.push(`lease_until = ${until}`);
  else if (!c.keepLease) sets.push('lease_owner = NULL', 'lease_until = NULL');
  return sets;
}

/** One commit's part of a statement: its CTEs (named with `s`) and its output columns. */
interface CommitPart {
  ctes: string[];
  outputs: string[];
}

/**
 * A step's commit as CTEs of one statement: the fenced UPDATE of the task, and the attempt,
 * artifacts and deliveries inserted by selecting from its result, so when the fence refuses (no
 * row) nothing is inserted, and otherwise all of it is, atomically. `values` takes the parameters;
 * `s` suffixes the CTE and output names, so several commits can share one statement.
 */
function commitPart(owner: string, c: StepCommit, off: number, values: unknown[], s: string): CommitPart {
  const param = (v: unknown, type: string) => {
    // Times may come with a fraction of a millisecond (a spread poll delay): bigint takes whole ones.
    values.push(v === undefined ? null : type === 'bigint' && typeof v === 'number' ? Math.round(v) : type === 'bigint[]' && Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? Math.round(x) : x)) : v);
    return `$${values.length}::${type}`;
  };
  const id = param(c.taskId, 'text');
  const lessee = param(owner, 'text');
  const fields = (Object.keys(c.patch) as (keyof TaskPatch)[]).sort();
  const ref = new Map<string, string>(fields.map((f) => [f, param(patchValue(f, c.patch[f], off), PATCH_TYPES[f])]));
  const until = c.keepLeaseUntil !== undefined ? param(c.keepLeaseUntil + off, 'bigint') : undefined;
  const sets = commitSets(fields, (f) => ref.get(f)!, (column) => column, c, until);

  const t = `t${s}`;
  const ctes = [`${t} AS (UPDATE tasks SET ${sets.join(', ')} WHERE id = ${id} AND lease_owner = ${lessee} AND ${canceledFence(c)} RETURNING id, tenant_id)`];
  if (c.attempt) {
    const a = c.attempt;
    const task = param(a.taskId, 'text');
    ctes.push(`a${s} AS (INSERT INTO attempts (task_id, n, step, provider, upstream_id, started_at, ended_at, outcome, error)
      SELECT ${task}, COALESCE((SELECT max(n) FROM attempts WHERE task_id = ${task}), 0) + 1, ${param(a.step, 'text')},
        ${param(a.provider, 'text')}, ${param(a.upstreamId, 'text')}, ${param(a.startedAt, 'bigint')}, ${param(a.endedAt, 'bigint')},
        ${param(a.outcome, 'text')}, ${param(a.error, 'text')} FROM ${t})`);
  }
  if (c.artifacts?.length) {
    // The last of a kind wins, as it would inserted one by one (one statement cannot upsert a row twice).
    const list = [...new Map(c.artifacts.map((x) => [`${x.taskId}\0${x.kind}`, x])).values()];
    const col = <K extends keyof (typeof list)[number]>(k: K, type: string) => param(list.map((x) => x[k]), `${type}[]`);
    ctes.push(`r${s} AS (INSERT INTO artifacts (task_id, kind, path, content_type, bytes, width, height, duration_ms, codec, created_at)
      SELECT x.* FROM ${t}, unnest(${col('taskId', 'text')}, ${col('kind', 'text')}, ${col('path', 'text')}, ${col('contentType', 'text')},
        ${col('bytes', 'bigint')}, ${col('width', 'integer')}, ${col('height', 'integer')}, ${col('durationMs', 'integer')},
        ${col('codec', 'text')}, ${col('createdAt', 'bigint')}) AS x
      ON CONFLICT (task_id, kind) DO UPDATE SET path = excluded.path, content_type = excluded.content_type,
        bytes = excluded.bytes, width = excluded.width, height = excluded.height, duration_ms = excluded.duration_ms,
        codec = excluded.codec, created_at = excluded.created_at)`);
  }
  if (c.events?.length) {
    const list = c.events;
    const col = (f: (e: (typeof list)[number]) => unknown, type: string) => param(list.map(f), `${type}[]`);
    ctes.push(`e${s} AS (INSERT INTO task_events (task_id, at, kind, actor, from_state, to_state, detail)
      SELECT x.* FROM ${t}, unnest(${col((e) => e.taskId, 'text')}, ${col((e) => e.at, 'bigint')}, ${col((e) => e.kind, 'text')},
        ${col((e) => e.actor, 'text')}, ${col((e) => e.from, 'text')}, ${col((e) => e.to, 'text')},
        ${col((e) => (e.detail === null ? null : JSON.stringify(e.detail)), 'json')}) AS x)`);
  }
  if (c.close) {
    // The item's open reservation (`h`: the item itself, or its latest ask, `hd:2`) is closed once:
    // the entry is refused when there is one (credit_ledger_close), and then neither the balance
    // nor the audit trail changes. A close without its amounts keeps all (settle) or gives all back.
    const x = c.close;
    const at = param(x.at, 'bigint');
    const [kind, reason, item] = [param(x.kind, 'text'), param(x.reason, 'text'), param(x.item, 'text')];
    const [amount, charged] = [param(x.amount ?? null, 'bigint'), param(x.charged ?? null, 'bigint')];
    const task = param(x.taskId, 'text');
    ctes.push(`h${s} AS (SELECT o.item, -o.amount AS credits FROM credit_ledger o
      WHERE o.task_id = ${task} AND o.kind = 'reserve' AND (o.item = ${item} OR o.item LIKE ${item} || ':%')
        AND NOT EXISTS (SELECT 1 FROM credit_ledger k WHERE k.task_id = o.task_id AND k.item = o.item AND k.kind IN ('settle', 'refund'))
      ORDER BY o.id DESC LIMIT 1)`);
    ctes.push(`l${s} AS (INSERT INTO credit_ledger (tenant_id, task_id, item, kind, amount, charged, at, note)
      SELECT ${param(x.tenantId, 'text')}, ${task}, h${s}.item, ${kind},
        COALESCE(${amount}, CASE WHEN ${kind} = 'refund' THEN h${s}.credits ELSE 0 END),
        COALESCE(${charged}, CASE WHEN ${kind} = 'refund' THEN 0 ELSE h${s}.credits END), ${at}, ${reason}
      FROM ${t}, h${s}
      ON CONFLICT DO NOTHING RETURNING tenant_id, item, amount, charged)`);
    ctes.push(`b${s} AS (UPDATE credit_accounts c SET balance = c.balance + l${s}.amount, updated_at = ${at} FROM l${s} WHERE c.tenant_id = l${s}.tenant_id RETURNING c.balance)`);
    ctes.push(`v${s} AS (INSERT INTO task_events (task_id, at, kind, actor, detail)
      SELECT ${task}, ${at}, 'ledger', 'engine', json_build_object('entry', ${kind}, 'item', l${s}.item, 'amount', l${s}.amount, 'charged', l${s}.charged, 'balance', b${s}.balance, 'reason', ${reason}) FROM l${s}, b${s})`);
  }
  const outputs = [`(SELECT count(*) FROM ${t}) AS updated${s}`];
  const owed = c.deliveries ?? [];
  if (owed.length) {
    const col = (f: (d: (typeof owed)[number]) => unknown, type: string) => param(owed.map(f), `${type}[]`);
    const leased = param(c.deliveriesLeasedUntil === undefined ? null : c.deliveriesLeasedUntil + off, 'bigint');
    // Ids come from the identity in insertion order, which ORDER BY x.n fixes.
    ctes.push(`d${s} AS (INSERT INTO deliveries (task_id, tenant_id, endpoint_id, url, body, created_at, next_attempt_at, lease_until)
      SELECT x.task_id, ${t}.tenant_id, x.endpoint_id, x.url, x.body, x.created_at, x.next_attempt_at, ${leased}
      FROM ${t}, unnest(${col((d) => d.taskId, 'text')}, ${col((d) => d.endpointId ?? null, 'text')}, ${col((d) => d.url, 'text')}, ${col((d) => d.body, 'text')},
        ${col((d) => d.createdAt, 'bigint')}, ${col((d) => d.createdAt + off, 'bigint')})
        WITH ORDINALITY AS x(task_id, endpoint_id, url, body, created_at, next_attempt_at, n)
      ORDER BY x.n
      RETURNING id)`);
    outputs.push(`(SELECT json_agg(id ORDER BY id) FROM d${s}) AS ids${s}`);
  }
  return { ctes, outputs };
}

/** Several commits as one statement (data-modifying CTEs all run, whatever the query reads). */
function commitStatement(owner: string, commits: StepCommit[], off: number): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const parts = commits.map((c, i) => commitPart(owner, c, off, values, commits.length === 1 ? '' : String(i)));
  return { text: `WITH ${parts.flatMap((p) => p.ctes).join(',\n')}\nSELECT ${parts.flatMap((p) => p.outputs).join(', ')}`, values };
}

/**
 * The shape of a commit that only patches the task (no attempt, artifacts or deliveries): its
 * patched fields and what it does with the lease. Commits of one shape share one named statement
 * whatever their number (their values go as arrays); undefined for any other commit.
 */
function plainShape(c: StepCommit): string | undefined {
  if (c.attempt || c.artifacts?.length || c.deliveries?.length || c.events?.length || c.close) return undefined;
  const lease = c.keepLeaseUntil !== undefined ? 'until' : c.keepLease ? 'keep' : 'release';
  return `${Object.keys(c.patch).sort().join(',')}|${lease}${c.ofCanceled ? '|canceled' : ''}`;
}

/** A canceled task takes only its cancel step's commit (`StepCommit.ofCanceled`); `t` names the row. */
function canceledFence(c: StepCommit, t = ''): string {
  return `${t}state ${c.ofCanceled ? '=' : '<>'} 'canceled'`;
}

/**
 * Commits of one plain shape (`plainShape`) as one UPDATE through unnest, each fenced by the
 * lease as a commit alone is: the same columns set, the same rule for a rendition still owed.
 * Its text depends on the shape only. It returns the ids of the tasks it updated.
 */
function plainStatement(owner: string, commits: StepCommit[], off: number): { text: string; values: unknown[] } {
  const first = commits[0]!;
  const fields = (Object.keys(first.patch) as (keyof TaskPatch)[]).sort();
  const whole = (v: unknown, type: string) => (v === undefined ? null : type === 'bigint' && typeof v === 'number' ? Math.round(v) : v);
  const columns: [name: string, type: string, values: unknown[]][] = [
    ['id', 'text', commits.map((c) => c.taskId)],
    ...fields.map((f): [string, string, unknown[]] => [PATCH_COLUMNS[f], PATCH_TYPES[f], commits.map((c) => whole(patchValue(f, c.patch[f], off), PATCH_TYPES[f]))]),
  ];
  if (first.keepLeaseUntil !== undefined) columns.push(['lease_until', 'bigint', commits.map((c) => Math.round(c.keepLeaseUntil! + off))]);
  const sets = commitSets(fields, (f) => `x.${PATCH_COLUMNS[f]}`, (column) => `t.${column}`, first, 'x.lease_until');
  const text = `UPDATE tasks t SET ${sets.join(', ')}
    FROM unnest(${columns.map(([, type], i) => `$${i + 2}::${type}[]`).join(', ')}) AS x(${columns.map(([name]) => name).join(', ')})
    WHERE t.id = x.id AND t.lease_owner = $1 AND ${canceledFence(first, 't.')} RETURNING t.id`;
  return { text, values: [owner, ...columns.map(([, , v]) => v)] };
}

/** Claiming due tasks under a lease, extending leases, and committing a step's result. */
export function claimOps(db: Db) {
  const commitNames = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = commitNames.get(text);
    if (!name && commitNames.size < MAX_NAMED_COMMITS) commitNames.set(text, (name = `reelay_commit_${commitNames.size}`));
    return name;
  };

  /** One commit alone, as a named statement (one per commit shape, up to MAX_NAMED_COMMITS). */
  async function commitOnce(owner: string, c: StepCommit, off: number): Promise<boolean> {
    const { text, values } = commitStatement(owner, [c], off);
    const name = nameOf(text);
    const { rows } = await db.query<Row>(name ?? 'reelay_commit', text, values, name !== undefined);
    return applied(c, rows[0]!, '');
  }

  /**
   * One commit alone, run again should it lose an attempt number: the number is the task's next
   * free one as the statement's snapshot sees it. Two commits of one task at once (one owner)
   * serialize on the task's row, and the second may then take the first's number: its statement
   * fails as a whole, and runs again.
   */
  async function commitAlone(owner: string, c: StepCommit, off: number): Promise<boolean> {
    for (let tries = 1; ; tries++) {
      try {
        return await commitOnce(owner, c, off);
      } catch (e) {
        const err = e as { code?: string; constraint?: string };
        if (tries >= 3 || err.code !== UNIQUE_VIOLATION || err.constraint !== 'attempts_pkey') throw e;
      }
    }
  }

  // Group commit: the commits asked for while others are out go together, as one statement of
  // each commit's CTEs (a round trip, and a write to the socket, per group rather than per commit).
  // One owner's; a task's commits one at a time, in the order asked (its second commit waits for
  // the first's answer); in id order: the tasks' rows are locked in the order of the statement's
  // CTEs (see extendLeases).
  // Commits that only patch the task (most polls) go as one named UPDATE of their shape; the
  // others as CTEs of one unnamed statement, which PostgreSQL parses and plans each time.
  const commit = batched(async (group: Pending[]): Promise<boolean[]> => {
    const off = await db.offset();
    if (group.length === 1) return [await commitAlone(group[0]!.owner, group[0]!.c, off)];
    if (group[0]!.shape !== undefined) {
      const { text, values } = plainStatement(group[0]!.owner, group.map((p) => p.c), off);
      const name = nameOf(text);
      const { rows } = await db.query<{ id: string }>(name ?? 'reelay_commit_plain', text, values, name !== undefined);
      const updated = new Set(rows.map((r) => r.id));
      return group.map((p) => updated.has(p.c.taskId));
    }
    const { text, values } = commitStatement(group[0]!.owner, group.map((p) => p.c), off);
    const { rows } = await db.query<Row>('reelay_commit_group', text, values, false);
    return group.map((p, i) => applied(p.c, rows[0]!, String(i)));
  }, {
    max: MAX_GROUP,
    out: MAX_GROUPS_OUT,
    // One owner's, and of one kind: one plain shape, or any commits that are not plain.
    // Two closes of one tenant never share a statement: PostgreSQL applies one update of a row
    // (the tenant's balance) per statement.
    joins: (p, group) => group.length === 0 || (p.owner === group[0]!.owner && p.shape === group[0]!.shape && !(p.c.close && group.some((g) => g.c.close?.tenantId === p.c.close!.tenantId))),
    key: (p) => p.c.taskId,
    order: (x, y) => (x.c.taskId < y.c.taskId ? -1 : x.c.taskId > y.c.taskId ? 1 : 0),
  });

  return {
    async claimDue(owner: string, now: number, leaseMs: number, limit: number, lane: ClaimLane = 'steps'): Promise<Task[]> {
      const off = await db.offset();
      const { rows } = await db.query(`reelay_claim_${lane}`, CLAIMS[lane], [owner, Math.round(now + off), Math.round(now + off + leaseMs), limit]);
      return rows.map((r) => taskFromRow(r, off)).sort((a, b) => (a.nextRunAt ?? 0) - (b.nextRunAt ?? 0));
    },
    async extendLeases(owner: string, ids: string[], until: number): Promise<string[]> {
      if (ids.length === 0) return [];
      const off = await db.offset();
      const held = new Set<string>();
      // In slices, so no statement holds thousands of row locks that step commits queue behind.
      for (let i = 0; i < ids.length; i += LEASE_SLICE) {
        const slice = ids.slice(i, i + LEASE_SLICE);
        for (let tries = 1; ; tries++) {
          try {
            const { rows } = await db.query<{ id: string }>(
              'reelay_extend',
              // Rows are locked in id order, as every statement that updates many tasks does
              // (group commits, admission): such statements wait for each other, and should two
              // still deadlock (PostgreSQL then aborts one), the slice runs again.
              `UPDATE tasks t SET lease_until = GREATEST(t.lease_until, $3)
               FROM (SELECT id FROM tasks WHERE id = ANY($1::text[]) AND lease_owner = $2 ORDER BY id FOR UPDATE) mine
               WHERE t.id = mine.id AND t.lease_owner = $2 RETURNING t.id`,
              [slice, owner, Math.round(until + off)],
            );
            for (const r of rows) held.add(r.id);
            break;
          } catch (e) {
            if (tries >= 3 || (e as { code?: string }).code !== DEADLOCK) throw e;
          }
        }
      }
      return ids.filter((id) => held.has(id));
    },
    async releaseLeases(owner: string, ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      await db.query(
        'reelay_release',
        `UPDATE tasks t SET lease_owner = NULL, lease_until = NULL
         FROM (SELECT id FROM tasks WHERE id = ANY($1::text[]) AND lease_owner = $2 ORDER BY id FOR UPDATE) mine
         WHERE t.id = mine.id AND t.lease_owner = $2`,
        [ids, owner],
      );
    },
    commitStep: (owner: string, c: StepCommit): Promise<boolean> => commit({ owner, c, shape: plainShape(c) }),
  };
}
