// Growth: what a poll answer and a claim cost when the store holds BENCH_LARGE (1,000,000) tasks
// against BENCH_SMALL (10,000), on SQLite and on PostgreSQL (a throwaway cluster, test/pg.ts). Goal:
// each within 1.25x. Most tasks are terminal (succeeded, failed, expired; many tenants, several
// providers, created over days, with their attempts, artifacts and delivered callbacks), and a
// live set of about 100 tasks stays the same size as the store grows, as in real use: queued and
// due, generating with upstream jobs polled later, some leased by another engine, a few finished
// jobs waiting for the download lane, and callbacks owed.
//
// Terminal rows are written with bulk SQL against the real schema (PostgreSQL generate_series,
// SQLite a recursive CTE), the same rows on both backends, and read back through the store to check
// they are tasks it accepts. The live set goes through `createTask`.
//
// What is measured, each op's latency through the store's own calls:
// - poll: `getTask` of a random task of the whole store, and of a recent one (the newest
//   BENCH_SMALL): all a kie record-info or kkiai query reads from the store (the key is cached).
// - claim: `claimDue` of the steps lane (32 due, batches of 16, each claimed task committed due
//   again), of the fetch lane (8 due, released again), and `claimDueDeliveries` (16 owed, put back
//   due with `finishDelivery`); beside them, not goals, the step commit that re-arms a claimed task
//   and `countInFlight` (what an engine reads at start).
// The store is measured at BENCH_SMALL, grown to BENCH_LARGE (then VACUUM ANALYZE on PostgreSQL),
// and measured in BENCH_ROUNDS rounds against a twin store kept at BENCH_SMALL: within a round the
// two take turns every BENCH_SLICE_MS, so the machine's drift falls on both sides of each ratio.
// The verdict reads the median latency; beside it the mean, and the work of a call: the process's
// CPU time (SQLite) or the statement's time in the server (PostgreSQL, pg_stat_statements).
//
// Then the plans at BENCH_LARGE of the statements measured, with the texts and values the store
// sent: PostgreSQL EXPLAIN (ANALYZE, BUFFERS) after 6 runs (the plan the plan cache chose for a
// named statement, and its generic plan beside it when that was not chosen), SQLite EXPLAIN QUERY
// PLAN of every statement the store prepared, each checked for a scan of a whole table.
// Experiments (BENCH_EXPERIMENTS=0 skips them) change the stores ad hoc and measure again, to
// size the fixes of what the run finds: they touch no migration and no store code.
//
//   npm run build && node dist/bench/growth.js       (4 to 7 minutes here)
//   BENCH_SMALL=1000 BENCH_LARGE=100000 BENCH_OP_SECONDS=0.5 node dist/bench/growth.js
//   BENCH_BACKENDS (sqlite,postgres), BENCH_ROUNDS (3), BENCH_OP_SECONDS (1.5), BENCH_SLICE_MS (100),
//   BENCH_PG_BUFFERS (2GB, experiment 1), BENCH_DATA_ROOT (the SQLite files: 1.4 GB at 1M)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Database } from 'better-sqlite3';
import type { Task } from '../src/core/task.js';
import { successFlag } from '../src/dialects/kie/mapper.js';
import { kkiaiStatus } from '../src/dialects/kkiai/mapper.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import type { Store } from '../src/store/port.js';
import Sqlite from '../src/store/sqlite/driver.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { makeTask } from '../test/fixtures.js';
import { clusterUrl, pgControl, startCluster, stopCluster, type RunningCluster } from '../test/pg.js';

const SMALL = Number(process.env.BENCH_SMALL ?? 10_000);
const LARGE = Number(process.env.BENCH_LARGE ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const OP_SECONDS = Number(process.env.BENCH_OP_SECONDS ?? 1.5);
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'sqlite,postgres').split(',').map((s) => s.trim());
const EXPERIMENTS = process.env.BENCH_EXPERIMENTS !== '0';
const GOAL = 1.25;
const CHUNK = 100_000;
/** Within a round the twin and the grown store take turns this often, ms. */
const SLICE_MS = Number(process.env.BENCH_SLICE_MS ?? 100);
/** The experiments' mapping of the SQLite file (SQLite's own limit is 2 GB unless built otherwise). */
const MMAP_BYTES = 2 ** 31 - 65536;
/** The page caches the SQLite experiments try, KiB. */
const CACHE_KIB = [32_768, 262_144];
/** The experiment's shared_buffers: room for the grown tasks table and its primary key. */
const PG_BUFFERS = process.env.BENCH_PG_BUFFERS ?? '2GB';

// --- the rows ---------------------------------------------------------------------------------

/** Terminal task i was created at T0 + i * SPACING: a million span 29 days, older than the live set. */
const NOW0 = Date.now();
const SPACING = 2500;
const T0 = NOW0 - LARGE * SPACING - 3_600_000;
/** Half the tasks belong to 10 big tenants, the other half to 1000 small ones. */
const BIG_TENANTS = 10;
const TENANTS = 1000;
const PROVIDERS = ['local', 'kie-main', 'kkiai-a', 'gemini', 'fal'];
const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
/** Terminal task i's id and tenant, as the bulk SQL makes them (kie-style: 12 hex of time, 20 more). */
const idOf = (i: number) => hex(T0 + i * SPACING, 12) + hex((i * 2654435761) % 2 ** 40, 10) + hex((i * 40503 + 977) % 2 ** 40, 10);
const tenantOf = (i: number) => (i % 2 === 0 ? `tb_${(i / 2) % BIG_TENANTS}` : `tn_${(i * 7919) % TENANTS}`);
/** i % 20: 0–13 succeeded (70 %), 14–16 failed, 17–19 expired. */
const stateOf = (i: number) => (i % 20 < 14 ? 'succeeded' : i % 20 < 17 ? 'failed' : 'expired');

interface Dialect {
  /** A row source `r` of terminal tasks from..to-1: `WITH … r AS (…)`. */
  rows(from: number, to: number): string;
  json(expr: string): string;
  bool(expr: string): string;
}

/** The columns of r, written once for both backends; only the id, the series and the types differ. */
function rowColumns(id: string): string {
  const provider = `CASE p ${PROVIDERS.map((name, n) => `WHEN ${n} THEN '${name}'`).join(' ')} END`;
  return `i, ct, k, ${id} AS id, CASE WHEN i % 2 = 0 THEN 'tb_' || ((i / 2) % ${BIG_TENANTS}) ELSE 'tn_' || ((i * 7919) % ${TENANTS}) END AS tenant,
      CASE WHEN i % 2 = 0 THEN 'kie' ELSE 'kkiai' END AS dialect,
      CASE WHEN i % 2 = 0 THEN 'veo3_fast' ELSE 'veo3.1-fast' END AS model,
      CASE WHEN k < 14 THEN 'succeeded' WHEN k < 17 THEN 'failed' ELSE 'expired' END AS state,
      'A lighthouse on a cliff at dusk, waves breaking below, the beam sweeping the fog, take ' || i AS prompt,
      i % 5 = 0 AS imaged, ${provider} AS provider, CASE WHEN p = 0 THEN NULL ELSE 'job-' || i END AS upstream,
      'ft' || ((i * 40503 + 977) % 1099511627776) || 'x' || i AS token,
      ct + 60000 + (i % 240) * 1000 AS done`;
}

const PG: Dialect = {
  rows: (from, to) => `WITH s AS (SELECT i, ${T0}::bigint + i * ${SPACING} AS ct, i % 20 AS k, (i / 3) % 5 AS p FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS i),
    r AS (SELECT ${rowColumns(`lpad(to_hex(ct), 12, '0') || lpad(to_hex((i * 2654435761) % 1099511627776), 10, '0') || lpad(to_hex((i * 40503 + 977) % 1099511627776), 10, '0')`)} FROM s)`,
  json: (e) => `(${e})::json`,
  bool: (e) => `(${e})`,
};

const SQLITE: Dialect = {
  rows: (from, to) => `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to - 1}),
    s AS (SELECT i, ${T0} + i * ${SPACING} AS ct, i % 20 AS k, (i / 3) % 5 AS p FROM n),
    r AS (SELECT ${rowColumns(`printf('%012x%010x%010x', ct, (i * 2654435761) % 1099511627776, (i * 40503 + 977) % 1099511627776)`)} FROM s)`,
  json: (e) => e,
  bool: (e) => `(CASE WHEN ${e} THEN 1 ELSE 0 END)`,
};

/** Four statements that add terminal tasks from..to-1 with their attempts, artifacts and callbacks. */
function terminalInserts(d: Dialect, from: number, to: number): string[] {
  const spec = `'{"prompt":"' || prompt || '","images":[' || CASE WHEN imaged AND state <> 'expired' THEN '"https://img.example/' || i || '.png"' ELSE '' END
    || '],"mode":"' || CASE WHEN imaged THEN 'frames' ELSE 'text' END || '","aspectRatio":"16:9","resolution":"' || CASE WHEN i % 7 = 0 THEN '1080p' ELSE '720p' END
    || '","upsample":' || CASE WHEN i % 7 = 0 THEN 'true' ELSE 'false' END || ',"seed":' || (10000 + i % 90000) || ',"durationSeconds":8,"enhancePrompt":false}'`;
  const request = `'{"model":"' || model || '","prompt":"' || prompt || '","aspect_ratio":"16:9","callBackUrl":null}'`;
  const images = `CASE WHEN imaged AND state <> 'expired' THEN '[{"url":"https://img.example/' || i || '.png","status":"completed","mediaId":"CAMa' || token || '"}]' ELSE '[]' END`;
  return [
    `${d.rows(from, to)}
     INSERT INTO tasks (id, tenant_id, dialect, model, spec, request, state, enhanced_prompt, images, provider, upstream_id,
       attempt_count, retry_count, max_retries, error_sleep_ms, last_error, last_error_kind, failure_stage, callback_url,
       file_token, hd_state, progress, created_at, updated_at, completed_at, deadline_at, next_run_at, route_index,
       submitted_at, fallback, result_url, uhd_state, uhd_callback_url)
     SELECT id, tenant, dialect, model, ${d.json(spec)}, ${d.json(request)}, state, prompt, ${d.json(images)}, provider, upstream,
       CASE WHEN k < 14 THEN 2 ELSE 3 END, CASE WHEN k < 14 THEN 0 ELSE 1 END, 3, 5000,
       CASE WHEN k >= 14 AND k < 17 THEN 'upstream job failed: internal error' END,
       CASE WHEN k >= 14 AND k < 17 THEN 'upstream' END, CASE WHEN k >= 14 AND k < 17 THEN 'generation' END,
       CASE WHEN i % 10 < 3 THEN 'https://client.example/callback/' || (i % 97) END,
       token, CASE WHEN k = 1 THEN 'ready' ELSE 'none' END, CASE WHEN k < 14 OR k >= 17 THEN 100 ELSE 40 END,
       ct, done, done, ct + 1800000, NULL, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END,
       CASE WHEN upstream IS NULL THEN NULL ELSE ct + 2000 END, ${d.bool('i % 50 = 0')}, NULL, 'none', NULL
     FROM r`,
    `${d.rows(from, to)}
     INSERT INTO attempts (task_id, n, step, provider, upstream_id, started_at, ended_at, outcome, error)
     SELECT id, x.n, CASE x.n WHEN 1 THEN 'submit' ELSE 'poll' END, provider, upstream, ct + x.n * 1000, ct + x.n * 1000 + 500,
       CASE WHEN x.n = 1 THEN 'submitted' WHEN state = 'failed' THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN x.n = 2 AND state = 'failed' THEN 'upstream job failed: internal error' END
     FROM r CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2) AS x`,
    `${d.rows(from, to)}
     INSERT INTO artifacts (task_id, kind, path, content_type, bytes, width, height, duration_ms, codec, created_at)
     SELECT id, 'video', substr(token, 3, 2) || '/' || token || '-video.mp4', 'video/mp4', 3000000 + i % 100000, 1280, 720, 8000, 'h264', done
     FROM r WHERE state = 'succeeded'`,
    `${d.rows(from, to)}
     INSERT INTO deliveries (task_id, url, body, status, attempts, next_attempt_at, lease_until, last_error, last_status, created_at, delivered_at)
     SELECT id, 'https://client.example/callback/' || (i % 97),
       '{"code":200,"msg":"success","data":{"taskId":"' || id || '","info":{"resultUrls":["https://reelay.example/files/' || token || '/video.mp4"]}}}',
       'delivered', 1, NULL, NULL, NULL, 200, done, done + 150
     FROM r WHERE i % 10 < 3`,
  ];
}

/** The live set, through the store: the same ~100 tasks at every size. */
const LIVE = { due: 32, waiting: 40, held: 16, fetch: 8 };
const OWED = 16;
const OWNER = 'bench-engine';

async function addLive(store: Store): Promise<void> {
  let j = 0;
  const live = (over: Partial<Task>): Task => {
    const at = NOW0 - 600_000 + j * 1000;
    const n = j++;
    return makeTask({ id: hex(at, 12) + hex(n * 7 + 1, 20), tenantId: tenantOf(n), dialect: 'kie', model: 'veo3_fast', fileToken: `live${n}`, createdAt: at, updatedAt: at, deadlineAt: at + 1_800_000, ...over });
  };
  const made: Promise<boolean>[] = [];
  for (let k = 0; k < LIVE.due; k++) made.push(store.createTask(live({ state: 'queued', nextRunAt: NOW0 - 5000 + k })));
  for (let k = 0; k < LIVE.waiting; k++) {
    made.push(store.createTask(live({ state: 'generating', provider: 'kie-main', upstreamId: `live-job-${k}`, submittedAt: NOW0 - 60_000, nextRunAt: NOW0 + 3_600_000 })));
  }
  for (let k = 0; k < LIVE.held; k++) {
    made.push(store.createTask(live({ state: 'generating', provider: 'gemini', upstreamId: `live-held-${k}`, submittedAt: NOW0 - 60_000, nextRunAt: NOW0 + 30_000 }), { owner: 'engine-other', until: NOW0 + 7_200_000 }));
  }
  for (let k = 0; k < LIVE.fetch; k++) {
    made.push(store.createTask(live({ state: 'generating', provider: 'fal', upstreamId: `live-done-${k}`, submittedAt: NOW0 - 60_000, resultUrl: `https://cdn.upstream.example/${k}.mp4`, nextRunAt: NOW0 - 5000 + k })));
  }
  const ok = await Promise.all(made);
  if (!ok.every(Boolean)) throw new Error('a live task was not created');
}

/** Callbacks owed (pending, due) for terminal tasks that have a callback URL. */
function owedInsert(now: number): string {
  const ids = Array.from({ length: OWED }, (_, k) => idOf(Math.floor(k / 3) * 10 + (k % 3)));
  return `INSERT INTO deliveries (task_id, url, body, status, attempts, next_attempt_at, created_at)
    VALUES ${ids.map((id, k) => `('${id}', 'https://client.example/callback/${k}', '{"code":200,"data":{"taskId":"${id}"}}', 'pending', 1, ${now - 1000 - k}, ${now - 60_000})`).join(', ')}`;
}

/** Reads sampled rows back through the store: each must be the task the SQL meant, in a shape the mappers read. */
async function checkRows(store: Store, n: number): Promise<void> {
  const picks = [0, 1, 14, 17, 5, 50, n - 1, Math.floor(n / 2), Math.floor(n / 3)];
  for (const i of picks) {
    const t = await store.getTask(tenantOf(i), idOf(i));
    const why = !t
      ? 'absent'
      : t.state !== stateOf(i)
        ? `state ${t.state}`
        : typeof t.spec.prompt !== 'string' || !Array.isArray(t.images) || typeof t.fallback !== 'boolean' || t.nextRunAt !== null
          ? 'malformed'
          : undefined;
    if (why) throw new Error(`terminal task ${i} (${idOf(i)}) read back ${why}: ${JSON.stringify(t)}`);
    successFlag(t!);
    kkiaiStatus(t!);
  }
  const other = await store.getTask('tn_nobody', idOf(0));
  if (other) throw new Error('a task was read under another tenant');
}

// --- backends ---------------------------------------------------------------------------------

interface Handle {
  label: string;
  store: Store;
  /** Adds terminal tasks from..to-1. */
  fill(from: number, to: number): Promise<void>;
  exec(sql: string): Promise<void>;
  /** After a fill: PostgreSQL VACUUM ANALYZE (what autovacuum gets to on an old table); SQLite nothing. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** What the server spent on each of an op's statements, µs per call (PostgreSQL). */
type ServerTimes = Map<string, { calls: number; mean: number }>;

interface Backend {
  name: 'sqlite' | 'postgres';
  open(label: string): Promise<Handle>;
  /** PostgreSQL: forgets the statement times (before a measurement), then reads them per store. */
  resetServerTimes?(): Promise<void>;
  serverTimes?(h: Handle): Promise<ServerTimes>;
  plans(h: Handle, ops: string[]): Promise<string[]>;
  /** Whether a plan line reads a whole table. */
  scans(line: string): boolean;
  /** Ad hoc changes to the grown store (never the twin), measured again: the fixes of the findings. */
  experiments?(large: Handle, twin: Handle): Promise<string[]>;
  buffers?(large: Handle, twin: Handle): Promise<string[]>;
  stop(): Promise<void>;
}

/** The SQLite store's prepared statements, caught as it prepares them: the texts it runs. */
const sqliteTexts = new Set<string>();
/** The bench's own connections, whose statements are not the store's. */
const ownConnections = new WeakSet<object>();
/** The connection that last prepared a store statement: right after openSqliteStore, the store's. */
let lastStoreConnection: Database | undefined;
{
  const proto = Sqlite.prototype as unknown as { prepare(source: string): unknown };
  const prepare = proto.prepare;
  proto.prepare = function (this: object, source: string) {
    if (!ownConnections.has(this)) {
      sqliteTexts.add(source);
      lastStoreConnection = this as Database;
    }
    return prepare.call(this, source);
  };
}

/** The PostgreSQL store's named statements as it sends them (`reelay_*`), with the last values of each. */
const pgSent = new Map<string, { text: string; values: unknown[]; at: number }>();
{
  const proto = pg.Client.prototype as unknown as { query(config: unknown, ...rest: unknown[]): unknown };
  const query = proto.query;
  proto.query = function (this: object, config: unknown, ...rest: unknown[]) {
    const c = config as { name?: unknown; text?: string; values?: unknown[] } | undefined;
    if (c && typeof c === 'object' && typeof c.name === 'string' && c.name.startsWith('reelay_') && c.text) {
      pgSent.set(c.name, { text: c.text, values: c.values ?? [], at: Date.now() });
    }
    return query.call(this, config, ...rest);
  };
}

/** Which store statements each measured op runs: SQLite texts, PostgreSQL statement names. */
const STATEMENTS: Record<string, { sqlite: (text: string) => boolean; postgres: (name: string, text: string) => boolean }> = {
  getTask: { sqlite: (t) => t === 'SELECT * FROM tasks WHERE id = ? AND tenant_id = ?', postgres: (n) => n === 'reelay_task_read' },
  steps: { sqlite: (t) => t.includes('SET lease_owner = @owner') && t.includes('result_url IS NULL'), postgres: (n) => n === 'reelay_claim_steps' },
  fetch: { sqlite: (t) => t.includes('SET lease_owner = @owner') && t.includes('result_url IS NOT NULL'), postgres: (n) => n === 'reelay_claim_fetch' },
  deliveries: { sqlite: (t) => t.includes('UPDATE deliveries SET lease_until = @until'), postgres: (n) => n === 'reelay_delivery_claim' },
  commit: { sqlite: (t) => t.includes('next_run_at = CASE') && t.includes('progress = @progress'), postgres: (n, t) => n.startsWith('reelay_commit_') && t.includes('progress = ') && !t.includes('state = $') },
  inflight: { sqlite: (t) => t.includes('COUNT(*) AS n FROM tasks'), postgres: (n) => n === 'reelay_in_flight' },
};

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-growth-'));
  const files = new Map<Handle, string>();
  /** Each store's own connection (for the experiments' pragmas). */
  const connections = new Map<Handle, Database>();
  const bindings = (source: string) => {
    const named = [...new Set([...source.matchAll(/@(\w+)/g)].map((m) => m[1]!))];
    if (named.length) return [Object.fromEntries(named.map((k) => [k, k === 'owner' ? OWNER : 0]))];
    return Array.from({ length: (source.match(/\?/g) ?? []).length }, () => 0);
  };
  const planOf = (db: Database, source: string): string[] => {
    try {
      const rows = db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...bindings(source)) as { id: number; parent: number; detail: string }[];
      const depth = new Map<number, number>([[0, 0]]);
      return rows.map((r) => {
        const d = (depth.get(r.parent) ?? 0) + 1;
        depth.set(r.id, d);
        return `${'  '.repeat(d)}${r.detail}`;
      });
    } catch (e) {
      return [`  (no plan: ${(e as Error).message})`];
    }
  };
  return {
    name: 'sqlite',
    async open(label) {
      const file = join(dir, `${label}.sqlite`);
      const store = openSqliteStore(file);
      const connection = lastStoreConnection!;
      // The bulk writes go through a connection of their own, with a big page cache; the store's
      // connection keeps the settings Reelay gives it.
      const bulk = new Sqlite(file);
      ownConnections.add(bulk);
      bulk.pragma('journal_mode = WAL');
      bulk.pragma('synchronous = OFF');
      bulk.pragma('cache_size = -262144');
      const h: Handle = {
        label,
        store,
        async fill(from, to) {
          for (let a = from; a < to; a += CHUNK) {
            const stmts = terminalInserts(SQLITE, a, Math.min(to, a + CHUNK)).map((s) => bulk.prepare(s));
            bulk.transaction(() => stmts.forEach((s) => s.run()))();
            bulk.pragma('wal_checkpoint(TRUNCATE)');
          }
        },
        async exec(sql) {
          bulk.exec(sql);
        },
        // Reelay never runs ANALYZE on its file: the store is measured as it ships.
        async settle() {
          bulk.pragma('wal_checkpoint(TRUNCATE)');
        },
        async close() {
          bulk.close();
          await store.close();
        },
      };
      files.set(h, file);
      connections.set(h, connection);
      return h;
    },
    async plans(h, ops) {
      const db = new Sqlite(files.get(h)!, { readonly: true });
      ownConnections.add(db);
      try {
        const texts = [...sqliteTexts].filter((t) => /\b(tasks|deliveries|attempts|artifacts)\b/.test(t));
        const measured = ops.flatMap((op) => texts.filter((t) => STATEMENTS[op]!.sqlite(t)).map((t) => [op, t] as const));
        const out = measured.map(([op, t]) => `${op}: ${t.replace(/\s+/g, ' ').trim()}\n${planOf(db, t).join('\n')}`);
        // Every other statement the store prepared, checked for scans too (shown when one scans).
        const others = texts.filter((t) => !measured.some(([, m]) => m === t));
        out.push(`(${others.length} more statements of the store, each planned: those that read a whole table follow, if any)`);
        for (const t of others) {
          const plan = planOf(db, t);
          if (plan.some((l) => /\bSCAN (tasks|deliveries|attempts|artifacts)\b/.test(l))) out.push(`other: ${t.replace(/\s+/g, ' ').trim()}\n${plan.join('\n')}`);
        }
        return out;
      } finally {
        db.close();
      }
    },
    // "SCAN tasks" reads the table, "SCAN tasks USING [COVERING] INDEX x" a whole index; SEARCH is a
    // range. A scan of tasks_inflight reads the generating tasks only (a partial index): not a finding.
    scans: (line) => /\bSCAN (tasks|deliveries|attempts|artifacts)\b/.test(line) && !/USING INDEX tasks_inflight\b/.test(line),
    async experiments(large, twin) {
      const out: string[] = [];
      // A poll of an old task reads its pages from the OS (the default page cache is 2 MB): with
      // the file mapped, the same read is a memory access.
      const polls = OPS.filter((o) => o.statement === 'getTask');
      const mb = (f: string) => (statSync(f).size / 1048576).toFixed(0);
      for (const h of [large, twin]) connections.get(h)!.pragma(`mmap_size = ${MMAP_BYTES}`);
      const mapped = await rounds(this, polls, twin, large);
      const mmap = connections.get(large)!.pragma('mmap_size', { simple: true });
      out.push(
        `sqlite, experiment 1: PRAGMA mmap_size = ${MMAP_BYTES} on the store's connection of both stores (files ${mb(files.get(large)!)} MB and ${mb(files.get(twin)!)} MB; the connection reports ${mmap})`,
        ...mapped.map((r) => `  ${r.op}: ${fmt(merged(r.small))} at ${sizeName(SMALL)}, ${fmt(merged(r.large))} at ${sizeName(LARGE)}: p50 ratio ${median(r.large.map((f, i) => f.p50 / r.small[i]!.p50)).toFixed(2)}x (rounds ${r.large.map((f, i) => (f.p50 / r.small[i]!.p50).toFixed(2)).join(' ')}), CPU ${num(median(r.work.map((w) => w.small)))} -> ${num(median(r.work.map((w) => w.large)))} µs`),
      );
      for (const h of [large, twin]) connections.get(h)!.pragma('mmap_size = 0');
      // The same reads with a page cache that holds the inner pages of the tasks table and of its
      // id index (the default is 2 MB: at a million tasks a read starts by fetching them from the OS).
      for (const cache of CACHE_KIB) {
        for (const h of [large, twin]) connections.get(h)!.pragma(`cache_size = -${cache}`);
        const cached = await rounds(this, polls, twin, large);
        out.push(
          `sqlite, experiment ${2 + CACHE_KIB.indexOf(cache)}: PRAGMA cache_size = -${cache} (${cache / 1024} MB) on the store's connection of both stores; process RSS now ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`,
          ...cached.map((r) => `  ${r.op}: ${fmt(merged(r.small))} at ${sizeName(SMALL)}, ${fmt(merged(r.large))} at ${sizeName(LARGE)}: p50 ratio ${median(r.large.map((f, i) => f.p50 / r.small[i]!.p50)).toFixed(2)}x (rounds ${r.large.map((f, i) => (f.p50 / r.small[i]!.p50).toFixed(2)).join(' ')}), CPU ${num(median(r.work.map((w) => w.small)))} -> ${num(median(r.work.map((w) => w.large)))} µs`),
        );
      }
      for (const h of [large, twin]) connections.get(h)!.pragma('cache_size = -2000');
      return out;
    },
    async stop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const require = createRequire(import.meta.url);
const { prepareValue, escapeLiteral } = require('pg/lib/utils.js') as { prepareValue(v: unknown): unknown; escapeLiteral(s: string): string };
const literal = (v: unknown) => (v === null || v === undefined ? 'NULL' : escapeLiteral(String(prepareValue(v))));

/** Where the plan a statement runs with ends, and the generic plan shown for reference begins. */
const GENERIC_MARK = '  its generic plan';

function postgresBackend(cluster: RunningCluster): Backend {
  const admin = new pg.Pool({ connectionString: cluster.url, max: 2 });
  // The experiments restart the server: idle connections then fail, and must not end the process.
  admin.on('error', () => {});
  const urls = new Map<Handle, string>();
  const oids = new Map<Handle, number>();
  /** pg_stat_statements' (normalised) texts of the ops' statements. */
  const statementOf = (q: string): string | undefined => {
    if (q.includes('FROM unnest($1::text[], $2::text[]) AS k(id, v)')) return 'getTask';
    // A claim's time is its function's call (with track = all its query is counted apart too).
    if (q.includes('reelay_claim_steps(')) return 'steps';
    if (q.includes('reelay_claim_fetch(')) return 'fetch';
    if (q.includes('UPDATE deliveries d SET lease_until')) return 'deliveries';
    if (q.includes('UPDATE tasks SET next_run_at = CASE') && q.includes('progress =')) return 'commit';
    if (q.includes('FROM tasks WHERE state = ') && q.includes('GROUP BY provider')) return 'inflight';
    return undefined;
  };
  return {
    name: 'postgres',
    async open(label) {
      const name = `growth_${label}`;
      await admin.query(`CREATE DATABASE ${name}`);
      const url = clusterUrl(cluster.dir, cluster.port, name);
      const store = openPostgresStore(url);
      await store.migrate();
      const bulk = new pg.Pool({ connectionString: url, max: 1 });
      bulk.on('error', () => {});
      const h: Handle = {
        label,
        store,
        async fill(from, to) {
          for (let a = from; a < to; a += CHUNK) {
            for (const s of terminalInserts(PG, a, Math.min(to, a + CHUNK))) await bulk.query(s);
          }
        },
        async exec(sql) {
          await bulk.query(sql);
        },
        async settle() {
          await bulk.query('VACUUM ANALYZE tasks, attempts, artifacts, deliveries');
        },
        async close() {
          await store.close();
          await bulk.end();
        },
      };
      urls.set(h, url);
      oids.set(h, (await admin.query<{ oid: number }>(`SELECT oid FROM pg_database WHERE datname = $1`, [name])).rows[0]!.oid);
      return h;
    },
    async resetServerTimes() {
      await admin.query('SELECT pg_stat_statements_reset()');
    },
    async serverTimes(h) {
      const { rows } = await admin.query<{ query: string; calls: number; mean: number }>(
        `SELECT query, calls::int, mean_exec_time * 1000 AS mean FROM pg_stat_statements WHERE dbid = $1 AND calls > 0`,
        [oids.get(h)],
      );
      const out: ServerTimes = new Map();
      for (const r of rows) {
        const op = statementOf(r.query);
        if (!op) continue;
        const prev = out.get(op);
        out.set(op, prev ? { calls: prev.calls + r.calls, mean: (prev.mean * prev.calls + r.mean * r.calls) / (prev.calls + r.calls) } : { calls: r.calls, mean: r.mean });
      }
      return out;
    },
    /**
     * Each op's statement with the text and values the store last sent, prepared on a connection of
     * our own and run 6 times (inside savepoints, rolled back), so the plan cache decides between a
     * custom and the generic plan as it does for the store's named statements; then EXPLAIN
     * (ANALYZE, BUFFERS) of the 7th run, and of the generic plan when the cache did not pick it.
     * Everything is rolled back.
     */
    async plans(h, ops) {
      const c = new pg.Client({ connectionString: urls.get(h)! });
      await c.connect();
      try {
        const out: string[] = [];
        for (const op of ops) {
          for (const [name, { text, values: sent, at }] of pgSent) {
            if (!STATEMENTS[op]!.postgres(name, text)) continue;
            // Times move to now (a claim's "now" of a while ago would find nothing due).
            const values = sent.map((v) => (typeof v === 'number' && Math.abs(v - at) < 86_400_000 ? v + (Date.now() - at) : v));
            const args = values.length ? `(${values.map(literal).join(', ')})` : '';
            const lines: string[] = [];
            // A claim is a function (migration 003): the plan shown is that of its query, planned
            // for its values as the function declares (plan_cache_mode = force_custom_plan).
            const fn = /FROM (reelay_claim_\w+)\(/.exec(text)?.[1];
            let planned = text;
            try {
              if (fn) {
                const def = (await c.query<{ d: string }>('SELECT pg_get_functiondef($1::regproc) AS d', [fn])).rows[0]!.d;
                const params = ['owner', 'now', 'until', 'limit'];
                planned = /RETURN QUERY\s+([\s\S]*?);\s*END/.exec(def)![1]!.replace(/\bp_(owner|now|until|limit)\b/g, (_, n: string) => `$${params.indexOf(n) + 1}`);
                lines.push(`  ${fn}'s query, as the function runs it:`);
              }
              await c.query('BEGIN');
              if (fn) await c.query('SET LOCAL plan_cache_mode = force_custom_plan');
              // A commit is fenced by its lease: the task is leased to the committer again first.
              if (op === 'commit') await c.query(`UPDATE tasks SET lease_owner = ${literal(values[1])}, lease_until = ${Date.now() + 60_000} WHERE id = ${literal(values[0])}`);
              await c.query(`PREPARE growth_plan AS ${planned}`);
              for (let k = 0; k < 6; k++) {
                await c.query('SAVEPOINT p');
                await c.query(`EXECUTE growth_plan${args}`);
                await c.query('ROLLBACK TO SAVEPOINT p');
              }
              const plan = async (): Promise<string[]> => {
                await c.query('SAVEPOINT p');
                const { rows } = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) EXECUTE growth_plan${args}`);
                await c.query('ROLLBACK TO SAVEPOINT p');
                return rows.map((r) => `  ${r['QUERY PLAN']}`);
              };
              const chosen = await plan();
              const counts = (await c.query<{ generic_plans: number; custom_plans: number }>(`SELECT generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE name = 'growth_plan'`)).rows[0]!;
              const generic = counts.generic_plans > 0;
              lines.push(`  the plan cache's choice after 6 runs: ${generic ? 'the generic plan' : 'a custom plan each run'} (generic ${counts.generic_plans}, custom ${counts.custom_plans})`, ...chosen);
              if (!generic && !fn) {
                await c.query('SET LOCAL plan_cache_mode = force_generic_plan');
                lines.push(`${GENERIC_MARK} (not used while the custom plans cost less):`, ...(await plan()).map((l) => `  ${l}`));
              }
            } catch (e) {
              lines.push(`  (no plan: ${(e as Error).message})`);
            } finally {
              await c.query('ROLLBACK');
              await c.query('DEALLOCATE ALL');
            }
            out.push(`${op} (${name}): ${text.replace(/\s+/g, ' ').trim()}\n  values: ${args || '(none)'}\n${lines.join('\n')}`);
          }
        }
        return out;
      } finally {
        await c.end();
      }
    },
    scans: (line) => /Seq Scan on (tasks|deliveries|attempts|artifacts)\b/.test(line),
    /** The claims' plans were the finding of earlier runs: migration 003 is their fix. */
    async experiments(large, twin) {
      return this.buffers!(large, twin);
    },
    /**
     * A poll of an old task reads its page from the OS when the table is larger than
     * shared_buffers (the test cluster's default, 128 MB): the same polls with shared_buffers
     * holding the table and its primary key (as a server that has run a while holds a working set
     * that fits), after a restart and pg_prewarm.
     */
    async buffers(large, twin) {
      const c = new pg.Client({ connectionString: urls.get(large)! });
      await c.connect();
      const sizes = (await c.query<{ t: string; i: string }>(`SELECT pg_size_pretty(pg_table_size('tasks')) AS t, pg_size_pretty(pg_relation_size('tasks_pkey')) AS i`)).rows[0]!;
      await c.end();
      await admin.query(`ALTER SYSTEM SET shared_buffers = '${PG_BUFFERS}'`);
      await pgControl('restart', 'fast', cluster);
      const fresh: Handle[] = [];
      try {
        for (const h of [large, twin]) {
          const store = openPostgresStore(urls.get(h)!);
          const h2: Handle = { ...h, store };
          oids.set(h2, oids.get(h)!);
          fresh.push(h2);
          const p = new pg.Client({ connectionString: urls.get(h)! });
          await p.connect();
          await p.query('CREATE EXTENSION IF NOT EXISTS pg_prewarm');
          await p.query(`SELECT pg_prewarm('tasks'), pg_prewarm('tasks_pkey')`);
          await p.end();
        }
        const setting = (await admin.query<{ shared_buffers: string }>('SHOW shared_buffers')).rows[0]!.shared_buffers;
        const rows = await rounds(this, OPS.filter((o) => o.statement === 'getTask'), fresh[1]!, fresh[0]!);
        return [
          `postgres, experiment 1: shared_buffers ${setting} (ALTER SYSTEM, restart, pg_prewarm of tasks and tasks_pkey) for the grown store's tasks table (${sizes.t}) and its primary key (${sizes.i})`,
          ...rows.map((r) => `  ${r.op}: ${fmt(merged(r.small))} at ${sizeName(SMALL)}, ${fmt(merged(r.large))} at ${sizeName(LARGE)}: p50 ratio ${median(r.large.map((f, i) => f.p50 / r.small[i]!.p50)).toFixed(2)}x (rounds ${r.large.map((f, i) => (f.p50 / r.small[i]!.p50).toFixed(2)).join(' ')}), in the server ${num(median(r.work.map((w) => w.small)))} -> ${num(median(r.work.map((w) => w.large)))} µs`),
        ];
      } finally {
        for (const h of fresh) await h.store.close();
      }
    },
    async stop() {
      await admin.end();
    },
  };
}

// --- measuring --------------------------------------------------------------------------------

interface Figure {
  /** Wall time per call, µs. */
  mean: number;
  p50: number;
  p99: number;
  n: number;
  /** The process's CPU time per call, µs (SQLite, where the call is all in-process work). */
  cpu: number;
}

/** A tiny seeded generator (mulberry32): the same picks in every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A timed call: wall µs and CPU µs of the measured store call alone (re-arming is not counted). */
interface Took {
  wall: number;
  cpu: number;
}

async function timed(call: () => Promise<unknown>): Promise<[Took, unknown]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await call();
  const wall = (performance.now() - t0) * 1000;
  const c = process.cpuUsage(c0);
  return [{ wall, cpu: c.user + c.system }, r];
}

function figure(samples: Took[]): Figure {
  const walls = Float64Array.from(samples, (s) => s.wall).sort();
  const at = (q: number) => walls[Math.min(walls.length - 1, Math.floor(q * walls.length))]!;
  const sum = (f: (s: Took) => number) => samples.reduce((a, s) => a + f(s), 0);
  return { mean: sum((s) => s.wall) / samples.length, p50: at(0.5), p99: at(0.99), n: samples.length, cpu: sum((s) => s.cpu) / samples.length };
}

interface Op {
  name: string;
  /** The statements it runs (`STATEMENTS`). */
  statement: string;
  /** Counted against the goal (a poll answer or a claim); the others are shown beside them. */
  goal: boolean;
  /** Seconds per measurement, when not OP_SECONDS. */
  seconds?: number;
  run(store: Store, size: number, random: () => number, commits: Took[]): Promise<Took>;
}

async function poll(store: Store, i: number): Promise<Took> {
  const [took, t] = await timed(() => store.getTask(tenantOf(i), idOf(i)));
  if (!t) throw new Error(`task ${i} not found`);
  return took;
}

const OPS: Op[] = [
  { name: 'poll: getTask, any task', statement: 'getTask', goal: true, run: (store, size, random) => poll(store, Math.floor(random() * size)) },
  { name: 'poll: getTask, recent task', statement: 'getTask', goal: true, run: (store, size, random) => poll(store, size - 1 - Math.floor(random() * Math.min(size, SMALL))) },
  {
    name: 'claim: claimDue steps (16)',
    statement: 'steps',
    goal: true,
    async run(store, _size, _random, commits) {
      const [took, r] = await timed(() => store.claimDue(OWNER, Date.now(), 60_000, 16, 'steps'));
      const got = r as Task[];
      if (got.length !== 16) throw new Error(`the steps claim found ${got.length} due tasks, not 16`);
      // Each claimed task is committed due again, as a poll that finds its job running is (later
      // than the rest: the next claim takes the other half).
      for (const t of got) {
        const now = Date.now();
        const [c, ok] = await timed(() => store.commitStep(OWNER, { taskId: t.id, patch: { nextRunAt: now, progress: (t.progress + 1) % 100, updatedAt: now } }));
        if (!ok) throw new Error('a commit lost its lease');
        commits.push(c);
      }
      return took;
    },
  },
  {
    name: 'claim: claimDue fetch (8)',
    statement: 'fetch',
    goal: true,
    async run(store) {
      const [took, r] = await timed(() => store.claimDue(OWNER, Date.now(), 60_000, 8, 'fetch'));
      const got = r as Task[];
      if (got.length !== LIVE.fetch) throw new Error(`the fetch claim found ${got.length} due tasks, not ${LIVE.fetch}`);
      await store.releaseLeases(OWNER, got.map((t) => t.id));
      return took;
    },
  },
  {
    name: 'claim: claimDueDeliveries (16)',
    statement: 'deliveries',
    goal: true,
    async run(store) {
      const [took, r] = await timed(() => store.claimDueDeliveries(Date.now(), 60_000, 16));
      const got = r as Awaited<ReturnType<Store['claimDueDeliveries']>>;
      if (got.length !== OWED) throw new Error(`the delivery claim found ${got.length} owed, not ${OWED}`);
      await Promise.all(got.map((d) => store.finishDelivery({ id: d.id, attempts: d.attempts + 1, status: 'pending', nextAttemptAt: Date.now(), lastError: 'HTTP 503', lastStatus: 503, deliveredAt: null })));
      return took;
    },
  },
  {
    name: 'countInFlight (engine start)',
    statement: 'inflight',
    goal: false,
    seconds: Math.min(OP_SECONDS, 1),
    async run(store) {
      const [took] = await timed(() => store.countInFlight());
      return took;
    },
  },
];
const COMMIT_OP = 'step commit (re-arm of a claim)';

interface Measured {
  figure: Figure;
  /** The step commits timed while the steps claim was measured. */
  commits?: Figure;
}

/** One op on one store: warm for 0.3 s, then timed for its seconds. */
async function measureOp(op: Op, store: Store, size: number, seed: number): Promise<Measured> {
  const random = rng(seed);
  const commits: Took[] = [];
  const warm = performance.now() + 300;
  while (performance.now() < warm) await op.run(store, size, random, []);
  const samples: Took[] = [];
  const end = performance.now() + (op.seconds ?? OP_SECONDS) * 1000;
  while (performance.now() < end) samples.push(await op.run(store, size, random, commits));
  return commits.length ? { figure: figure(samples), commits: figure(commits) } : { figure: figure(samples) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const num = (x: number) => (x >= 1000 ? x.toFixed(0) : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fmt = (f: Figure) => `${num(f.mean)} (${num(f.p50)}/${num(f.p99)})`;

interface Row {
  op: string;
  backend: string;
  goal: boolean;
  before?: Figure;
  small: Figure[];
  large: Figure[];
  /** Per round: CPU (SQLite) or server (PostgreSQL) µs per call, small and large. */
  work: { small: number; large: number }[];
}

/**
 * Interleaved rounds of each op on the twin (small) and the grown store (large). Within a round
 * the two take turns every SLICE_MS, so a stall of the machine (other processes) falls on both
 * about equally; each store's samples of the round make its figure.
 */
async function rounds(b: Backend, ops: Op[], small: Handle, large: Handle): Promise<Row[]> {
  const rows: Row[] = ops.map((op) => ({ op: op.name, backend: b.name, goal: op.goal, small: [], large: [], work: [] }));
  const commitRow: Row = { op: COMMIT_OP, backend: b.name, goal: false, small: [], large: [], work: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, op] of ops.entries()) {
      const sides = [
        { which: 'small' as const, h: small, size: SMALL, random: rng(1000 * r + k), samples: [] as Took[], commits: [] as Took[] },
        { which: 'large' as const, h: large, size: LARGE, random: rng(1000 * r + k + 500), samples: [] as Took[], commits: [] as Took[] },
      ];
      for (const s of sides) {
        const warm = performance.now() + 150;
        while (performance.now() < warm) await op.run(s.h.store, s.size, s.random, []);
      }
      await b.resetServerTimes?.();
      const slices = Math.max(2, Math.round(((op.seconds ?? OP_SECONDS) * 1000) / SLICE_MS));
      for (let i = 0; i < slices; i++) {
        for (const s of i % 2 ? [...sides].reverse() : sides) {
          const end = performance.now() + SLICE_MS;
          do s.samples.push(await op.run(s.h.store, s.size, s.random, s.commits));
          while (performance.now() < end);
        }
      }
      const server = b.serverTimes ? { small: await b.serverTimes(small), large: await b.serverTimes(large) } : undefined;
      const work = (which: 'small' | 'large', statement: string, f: Figure) => (server ? (server[which].get(statement)?.mean ?? NaN) : f.cpu);
      const [fs, fl] = sides.map((s) => figure(s.samples)) as [Figure, Figure];
      rows[k]!.small.push(fs);
      rows[k]!.large.push(fl);
      rows[k]!.work.push({ small: work('small', op.statement, fs), large: work('large', op.statement, fl) });
      if (sides[0]!.commits.length && sides[1]!.commits.length) {
        const [cs, cl] = sides.map((s) => figure(s.commits)) as [Figure, Figure];
        commitRow.small.push(cs);
        commitRow.large.push(cl);
        commitRow.work.push({ small: work('small', 'commit', cs), large: work('large', 'commit', cl) });
      }
    }
  }
  return commitRow.small.length ? [...rows, commitRow] : rows;
}

/** The figures of all rounds as one: medians of the rounds' mean and p50, the largest p99. */
const merged = (fs: Figure[]): Figure => ({
  mean: median(fs.map((f) => f.mean)),
  p50: median(fs.map((f) => f.p50)),
  p99: Math.max(...fs.map((f) => f.p99)),
  n: fs.reduce((a, f) => a + f.n, 0),
  cpu: median(fs.map((f) => f.cpu)),
});

const sizeName = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));

function printTable(rows: Row[]): void {
  const [S, L] = [sizeName(SMALL), sizeName(LARGE)];
  console.log(`\ncost per call, µs: mean (p50/p99). "${S} before": the store before it grew. "${S} twin" and "${L}": medians of ${ROUNDS} rounds that interleave the twin and the grown store.`);
  console.log(`ratio: ${L} / ${S} twin in each round, median of the rounds: on p50 (the verdict's), on the mean, and on the work: the process's CPU per call (SQLite) or the`);
  console.log(`statement's execution time in the server, pg_stat_statements (PostgreSQL). On this shared 2-core machine the means swing with other processes' stalls.\n`);
  console.log(`${'op'.padEnd(32)} ${'backend'.padEnd(8)} ${`${S} before`.padStart(20)} ${`${S} twin`.padStart(20)} ${L.padStart(20)}  ${'p50 ratio (rounds)'.padEnd(24)} ${'mean'.padStart(6)}  ${'work µs, ratio'.padEnd(22)} goal`);
  for (const r of rows) {
    const p50 = r.large.map((f, i) => f.p50 / r.small[i]!.p50);
    const mean = median(r.large.map((f, i) => f.mean / r.small[i]!.mean));
    const work = { small: median(r.work.map((w) => w.small)), large: median(r.work.map((w) => w.large)), ratio: median(r.work.map((w) => w.large / w.small)) };
    const ratio = median(p50);
    const verdict = !r.goal ? '(not a goal)' : ratio <= GOAL ? `<= ${GOAL}x met` : `<= ${GOAL}x MISSED`;
    console.log(
      `${r.op.padEnd(32)} ${r.backend.padEnd(8)} ${(r.before ? fmt(r.before) : '').padStart(20)} ${fmt(merged(r.small)).padStart(20)} ${fmt(merged(r.large)).padStart(20)}  ${`${ratio.toFixed(2)}x (${p50.map((x) => x.toFixed(2)).join(' ')})`.padEnd(24)} ${`${mean.toFixed(2)}x`.padStart(6)}  ${`${num(work.small)} -> ${num(work.large)} ${work.ratio.toFixed(2)}x`.padEnd(22)} ${verdict}`,
    );
  }
}

// --- the run ----------------------------------------------------------------------------------

async function grow(h: Handle, from: number, to: number): Promise<void> {
  const t0 = performance.now();
  await h.fill(from, to);
  await h.settle();
  console.log(`  ${h.label}: ${(to - from).toLocaleString('en')} terminal tasks added in ${((performance.now() - t0) / 1000).toFixed(1)} s (${to.toLocaleString('en')} in all)`);
}

interface Result {
  rows: Row[];
  plans: string[];
  experiments: string[];
}

async function runBackend(b: Backend): Promise<Result> {
  console.log(`\n== ${b.name}`);
  const large = await b.open('large');
  const twin = await b.open('twin');
  try {
    for (const h of [large, twin]) {
      await grow(h, 0, SMALL);
      await addLive(h.store);
      await h.exec(owedInsert(Date.now()));
      await checkRows(h.store, SMALL);
    }
    // The store at BENCH_SMALL, before it grows.
    const before = new Map<string, Figure>();
    for (const [k, op] of OPS.entries()) {
      const m = await measureOp(op, large.store, SMALL, 77 + k);
      before.set(op.name, m.figure);
      if (m.commits) before.set(COMMIT_OP, m.commits);
    }
    await grow(large, SMALL, LARGE);
    await checkRows(large.store, LARGE);
    const measuredFrom = performance.now();
    const rows = await rounds(b, OPS, twin, large);
    for (const r of rows) r.before = before.get(r.op);
    const plans = await b.plans(large, [...new Set([...OPS.map((o) => o.statement), 'commit'])]);
    console.log(`  ${b.name}: measured and planned in ${((performance.now() - measuredFrom) / 1000).toFixed(0)} s`);
    const experiments = EXPERIMENTS && b.experiments ? await b.experiments(large, twin) : [];
    return { rows, plans, experiments };
  } finally {
    await large.close();
    await twin.close();
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  console.log(`node ${process.version}, ${SMALL.toLocaleString('en')} vs ${LARGE.toLocaleString('en')} tasks (live set ${Object.values(LIVE).reduce((a, b) => a + b, 0)} tasks, ${OWED} callbacks owed), ${ROUNDS} rounds of ${OP_SECONDS} s per op and size`);
  const results: [Backend, Result][] = [];
  let cluster: RunningCluster | undefined;
  const stop = () => {
    if (cluster) stopCluster(cluster);
    cluster = undefined;
  };
  process.on('exit', stop);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
  for (const name of BACKENDS) {
    let b: Backend;
    if (name === 'postgres') {
      process.env.REELAY_TEST_PG_STATS = '1'; // pg_stat_statements, loaded at start
      cluster = startCluster({ port: 5400 + (process.pid % 500) });
      const c = new pg.Client({ connectionString: cluster.url });
      await c.connect();
      await c.query('CREATE EXTENSION pg_stat_statements');
      const settings = await c.query<{ name: string; setting: string; unit: string | null }>(
        `SELECT name, setting, unit FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'autovacuum', 'autovacuum_vacuum_scale_factor') ORDER BY name`,
      );
      console.log(`\nPostgreSQL: ${settings.rows.map((r) => `${r.name} ${r.setting}${r.unit && r.unit !== '8kB' ? r.unit : r.unit === '8kB' ? ` x 8kB` : ''}`).join(', ')}`);
      await c.end();
      b = postgresBackend(cluster);
    } else if (name === 'sqlite') {
      b = sqliteBackend();
    } else {
      throw new Error(`BENCH_BACKENDS: no backend ${name}`);
    }
    try {
      results.push([b, await runBackend(b)]);
    } finally {
      await b.stop();
      stop();
    }
  }

  printTable(results.flatMap(([, r]) => r.rows));
  for (const [b, r] of results) {
    console.log(`\n== plans at ${LARGE.toLocaleString('en')} tasks: ${b.name}`);
    const scanning: string[] = [];
    const latent: string[] = [];
    for (const p of r.plans) {
      console.log(`\n${p}`);
      const [head, ...plan] = p.split('\n');
      const cut = plan.findIndex((l) => l.startsWith(GENERIC_MARK));
      const [used, reference] = cut < 0 ? [plan, []] : [plan.slice(0, cut), plan.slice(cut)];
      if (used.some((l) => b.scans(l))) scanning.push(head!.slice(0, 120));
      if (reference.some((l) => b.scans(l))) latent.push(head!.slice(0, 120));
    }
    console.log(`\n${b.name}: ${scanning.length ? `plans that read a whole table (a finding):\n  ${scanning.join('\n  ')}` : 'no plan a statement runs with reads a whole table'}`);
    if (latent.length) console.log(`${b.name}: generic plans, not chosen, that would read a whole table:\n  ${latent.join('\n  ')}`);
  }
  const experiments = results.flatMap(([, r]) => r.experiments);
  if (experiments.length) console.log(`\n== experiments (ad hoc, on the grown store only; no migration or store code changed)\n${experiments.join('\n')}`);
  console.log(`\nwhole run: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

await main();
