// The PostgreSQL store on a throwaway local cluster (test/pg.ts: unix socket, fsync off): creates,
// claims and step commits per second with several engines at once, each engine a store with its own
// pool, as separate processes would have. The step commit is the store's one statement (a fenced
// UPDATE with the attempt and artifact inserted from its result); beside it, the same commit as a
// transaction of three statements on one connection, to show what the one statement saves.
//
//   npm run build && node dist/bench/pg-store.js      (BENCH_TASKS 5000, BENCH_ENGINES 4, BENCH_BATCH 16)
import pg from 'pg';
import { makeTask } from '../test/fixtures.js';
import { freshDatabase, startCluster, clusterEnv } from '../test/pg.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import type { Store } from '../src/store/port.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 5000);
const ENGINES = Number(process.env.BENCH_ENGINES ?? 4);
const BATCH = Number(process.env.BENCH_BATCH ?? 16);

const perSecond = (n: number, ms: number) => Math.round((n / ms) * 1000);

async function creates(s: Store, prefix: string): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < TASKS; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, TASKS - i) }, (_, j) => s.createTask(makeTask({ id: `${prefix}${i + j}`, fileToken: 'f', nextRunAt: i + j }))));
  }
  return perSecond(TASKS, performance.now() - start);
}

/** Engines claim batches and commit each task (a poll: patch, attempt, artifact), until none is due. */
async function steps(stores: Store[], commit: (s: Store, owner: string, id: string, n: number) => Promise<boolean>): Promise<{ claims: number; commits: number }> {
  let claims = 0;
  let commits = 0;
  const start = performance.now();
  await Promise.all(
    stores.map(async (s, k) => {
      for (let n = 0; ; n++) {
        const got = await s.claimDue(`E${k}`, TASKS * 10, 60_000, BATCH);
        claims++;
        if (got.length === 0) return;
        const ok = await Promise.all(got.map((t) => commit(s, `E${k}`, t.id, n)));
        commits += ok.filter(Boolean).length;
      }
    }),
  );
  const ms = performance.now() - start;
  return { claims: perSecond(claims, ms), commits: perSecond(commits, ms) };
}

const storeCommit = (s: Store, owner: string, id: string, n: number) =>
  s.commitStep(owner, {
    taskId: id,
    patch: { state: 'generating', progress: 50, nextRunAt: null, updatedAt: n },
    attempt: { taskId: id, n: 0, step: 'poll', provider: 'local', upstreamId: 'u', startedAt: n, endedAt: n, outcome: 'retry', error: null },
    artifacts: [{ taskId: id, kind: 'video', path: '/v', contentType: 'video/mp4', bytes: 1, width: 1, height: 1, durationMs: 1, codec: 'h264', createdAt: n }],
  });

/** The same commit as BEGIN, three statements, COMMIT. */
function transactionCommit(url: string) {
  const pools = new Map<Store, pg.Pool>();
  const commit = async (s: Store, owner: string, id: string, n: number): Promise<boolean> => {
    let pool = pools.get(s);
    if (!pool) pools.set(s, (pool = new pg.Pool({ connectionString: url, max: 10 })));
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const r = await c.query({
        name: 'u',
        text: `UPDATE tasks SET state = $3, progress = $4, next_run_at = NULL, updated_at = $5, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`,
        values: [id, owner, 'generating', 50, n],
      });
      if (r.rowCount !== 1) {
        await c.query('ROLLBACK');
        return false;
      }
      await c.query({
        name: 'a',
        text: `INSERT INTO attempts (task_id, n, step, provider, upstream_id, started_at, ended_at, outcome, error)
               VALUES ($1, (SELECT COALESCE(max(n), 0) + 1 FROM attempts WHERE task_id = $1), 'poll', 'local', 'u', $2, $2, 'retry', NULL)`,
        values: [id, n],
      });
      await c.query({
        name: 'r',
        text: `INSERT INTO artifacts (task_id, kind, path, content_type, bytes, width, height, duration_ms, codec, created_at)
               VALUES ($1, 'video', '/v', 'video/mp4', 1, 1, 1, 1, 'h264', $2)
               ON CONFLICT (task_id, kind) DO UPDATE SET path = excluded.path, created_at = excluded.created_at`,
        values: [id, n],
      });
      await c.query('COMMIT');
      return true;
    } finally {
      c.release();
    }
  };
  return { commit, close: () => Promise.all([...pools.values()].map((p) => p.end())) };
}

const started = performance.now();
const cluster = startCluster();
Object.assign(process.env, clusterEnv(cluster));
console.log(`cluster started in ${Math.round(performance.now() - started)} ms; ${TASKS} tasks, ${ENGINES} engines, batches of ${BATCH}`);
try {
  for (const variant of ['one statement', 'transaction'] as const) {
    const url = (await freshDatabase())!;
    const stores = Array.from({ length: ENGINES }, () => openPostgresStore(url));
    await stores[0]!.migrate();
    const tx = transactionCommit(url);
    const created = await creates(stores[0]!, 't');
    const r = await steps(stores, variant === 'one statement' ? storeCommit : tx.commit);
    console.log(`${variant.padEnd(14)} creates/s ${created}  claims/s ${r.claims}  commits/s ${r.commits}`);
    await tx.close();
    await Promise.all(stores.map((s) => s.close()));
  }
} finally {
  cluster.stop();
}
