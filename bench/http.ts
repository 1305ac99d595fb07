// HTTP benchmark, one run, one machine: task queries (kie record-info, kkiai query, OpenAI
// retrieve, Gemini operation poll) on existing tasks and durable creates, against a bare Fastify hello-world. Each server is its own process.
// The load comes from wrk (Debian's `wrk`, written in C) when it is installed, else from
// autocannon in this process. autocannon parses responses in JavaScript, so with it the load
// generator itself limits the larger task answers and the ratios come out low.
//
// Each target first runs unmeasured for BENCH_WARMUP_SECONDS (2 s), so the JIT has compiled
// each server's hot path before its figure is taken. Then BENCH_ROUNDS (3) rounds of every target
// alternate with the hello-world; each ratio is reported per round and as the median of rounds.
// Each line also gives the CPU seconds the target's servers and PostgreSQL used during it, and
// how busy the whole machine was.
//
// BENCH_STORE=postgres measures the kie and kkiai polls served by 2 API processes (`serve --role
// api`) sharing a throwaway PostgreSQL cluster (started here as the tests do, stopped on the way
// out), beside the same polls on the embedded default (SQLite, one process), in the same rounds.
// A target on 2 processes gets two load generators at once, each with half the connections, and
// its figure is their sum; its latencies are those of both together.
// BENCH_PROF=dir writes CPU profiles of the Reelay processes there; BENCH_PG_STATS=1 prints
// PostgreSQL's costliest statements (pg_stat_statements) at the end; BENCH_ONLY=text keeps only
// the targets whose names hold it (BENCH_ONLY=PG: the PostgreSQL polls and the hello-world).
//
//   apt-get install wrk && npm run bench   (5 s per target and round, 50 connections, 2000 tasks)
//   BENCH_SECONDS=10 BENCH_ROUNDS=5 BENCH_CONNECTIONS=100 BENCH_LOADER=autocannon npm run bench
//   npm run build && BENCH_STORE=postgres node dist/bench/http.js   (about 2 minutes; 5 rounds: 3)
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { hashKey } from '../src/auth/keys.js';
import { kieTaskId } from '../src/dialects/kie/ids.js';
import { kkiaiTaskId } from '../src/dialects/kkiai/ids.js';
import { geminiTaskId } from '../src/dialects/gemini/ids.js';
import { videoId } from '../src/dialects/openai/ids.js';
import type { Task } from '../src/core/task.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { startCluster, stopCluster } from '../test/pg.js';
import { freePort } from '../test/server.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const TASKS = Number(process.env.BENCH_TASKS ?? 2000);
const POSTGRES = process.env.BENCH_STORE === 'postgres';
const KEY = 'sk-bench-key';
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const profFlags = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];

const MODELS: Record<string, string> = { kie: 'veo3_fast', kkiai: 'veo3.1-fast', openai: 'sora-2', gemini: 'veo-3.1-fast-generate-preview' };

function task(id: string, dialect: Task['dialect'], i: number): Task {
  const now = Date.now();
  return {
    id, tenantId: `t_${hashKey(KEY).slice(0, 16)}`, dialect, model: MODELS[dialect]!,
    spec: { prompt: `bench prompt ${i}`, images: [], mode: 'text', aspectRatio: '16:9', resolution: dialect === 'kie' ? '720p' : '1080p', upsample: dialect !== 'kie', seed: 10000 + i, durationSeconds: 8, enhancePrompt: true },
    request: { prompt: `bench prompt ${i}`, model: dialect === 'kie' ? 'veo3_fast' : 'veo3.1-fast', enable_upsample: dialect !== 'kie' },
    state: 'succeeded', enhancedPrompt: `bench prompt ${i}. Wide establishing shot, golden-hour sunlight, a serene mood, rich textures, smooth natural motion.`,
    images: [], provider: 'local', upstreamId: 'b'.repeat(32), attemptCount: 1, retryCount: 0, maxRetries: 3, errorSleepMs: 5000,
    lastError: null, lastErrorKind: null, failureStage: null, callbackUrl: null, fileToken: `tok${i}${dialect}`, hdState: 'none', uhdState: 'none', uhdCallbackUrl: null,
    progress: 100, createdAt: now - 60_000, updatedAt: now, completedAt: now, deadlineAt: now + 1_800_000, nextRunAt: null,
    routeIndex: 0, submittedAt: now - 30_000, fallback: false, resultUrl: null, cancelOutcome: null, deleteRequested: false, charge: null,
  };
}

// Every way out (an error, Ctrl-C, the end) ends the servers and the cluster started here and
// removes the folder (test/pg.ts's watchdog covers a SIGKILL of this process).
const dir = mkdtempSync(join(tmpdir(), 'reelay-bench-'));
const children: ChildProcess[] = [];
if (process.env.BENCH_PG_STATS) process.env.REELAY_TEST_PG_STATS = '1';
const cluster = POSTGRES ? startCluster() : undefined;
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (cluster) stopCluster(cluster);
  rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130));

/** Starts a server process; ready when its output passes `ready`, or when `health` answers 200. */
async function start(cmd: string[], env: Record<string, string>, ready: (out: string) => boolean, health?: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, cmd, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (ready(out)) resolve();
    });
    child.on('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
    if (health) {
      const poll = () => void fetch(health).then((r) => (r.ok ? resolve() : setTimeout(poll, 50)), () => setTimeout(poll, 50));
      poll();
    }
  });
  return child;
}

/** A Reelay server (`serve`, engine off) on a free port, and its base URL. */
async function reelay(env: Record<string, string>, role?: 'api'): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = await start([...profFlags, here('../src/cli.js'), 'serve', ...(role ? ['--role', role] : [])], {
    PORT: String(port), REELAY_API_KEYS: KEY, REELAY_ENGINE: 'off', LOG_LEVEL: 'warn', ...env,
  }, () => false, `${base}/healthz`);
  return { child, base };
}

interface Target {
  /** The servers the load is split over, evenly; their processes are those measured. */
  bases: string[];
  servers: ChildProcess[];
  paths: string[];
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Each request carries an `Idempotency-Key` of its own (a create that is never a repeat). */
  uniqueKeys?: boolean;
}

/** The prefix of the keys `uniqueKeys` sends: new per run, so no round repeats another's keys. */
const KEY_RUN = Math.random().toString(36).slice(2, 10);
let keyLoad = 0;

/** One measured run: req/s over all the servers, latencies in µs over all requests. */
interface Figure {
  rps: number;
  p50: number;
  p99: number;
  bad: number;
}

// --- CPU, from /proc: seconds per process, and how busy the machine was ---

/** CPU seconds (user + system) of a process; with `reaped`, also of its children that ended. */
function cpuSeconds(pid: number | undefined, reaped = false): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0)) / 100;
  } catch {
    return 0;
  }
}

/** The cluster's CPU seconds: the postmaster's, its ended backends' and its live ones'. */
function postgresCpu(): number {
  if (!cluster) return 0;
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return 0;
  }
  let sum = cpuSeconds(postmaster, true);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === postmaster) sum += cpuSeconds(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return sum;
}

/** The machine's busy and total CPU time, in clock ticks over all cores (/proc/stat). */
function machine(): { busy: number; total: number } {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  return { busy: total - ticks[3]! - ticks[4]!, total };
}

/** Runs `measure`, and reads the CPU that the servers, PostgreSQL and the machine spent meanwhile. */
async function withCpu<T>(servers: ChildProcess[], measure: () => Promise<T>): Promise<{ result: T; cpu: string }> {
  const servers0 = servers.map((s) => cpuSeconds(s.pid));
  const pg0 = postgresCpu();
  const m0 = machine();
  const result = await measure();
  const used = servers.map((s, i) => (cpuSeconds(s.pid) - servers0[i]!).toFixed(1)).join('+');
  const m1 = machine();
  const busy = (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total);
  return { result, cpu: `cpu s: server ${used}${cluster ? `, postgres ${(postgresCpu() - pg0).toFixed(1)}` : ''}, machine ${busy.toFixed(0)} % busy` };
}

// --- the load ---

const hasWrk = process.env.BENCH_LOADER !== 'autocannon' && spawnSync('wrk', ['--version']).error === undefined;
const split = (t: Target) => Math.max(1, Math.round(CONNECTIONS / t.bases.length));
const ms = (us: number) => `${(us / 1000).toFixed(2)}ms`;

/**
 * The p-th percentile of several wrk runs' latencies taken together, from each run's request
 * count and its percentiles at 0.1 %, 0.2 %, … 99.9 % (wrk's script API gives percentiles, not its
 * histogram): the smallest latency under which p % of all requests fall (p up to 99.9).
 */
function mergedPercentile(runs: { n: number; q: number[] }[], p: number): number {
  const total = runs.reduce((s, r) => s + r.n, 0);
  const below = (q: number[], x: number) => {
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo / 1000;
  };
  const xs = [...new Set(runs.flatMap((r) => r.q))].sort((a, b) => a - b);
  return xs.find((x) => runs.reduce((s, r) => s + r.n * below(r.q, x), 0) >= (p / 100) * total) ?? NaN;
}

/** wrk, one per server at once, each with a Lua script that walks the paths round-robin. */
async function loadWrk(t: Target, seconds: number): Promise<Figure> {
  const q = (v: string) => JSON.stringify(v);
  const runs = await Promise.all(t.bases.map(async (base, k) => {
    const lua = join(dir, `bench-${k}.lua`);
    const quantiles = join(dir, `quantiles-${k}.txt`);
    const keyPrefix = `${KEY_RUN}-${keyLoad++}-${k}-`;
    writeFileSync(lua, [
      `local paths = {${t.paths.map(q).join(',')}}`,
      'local i = 0',
      `wrk.method = ${q(t.method ?? 'GET')}`,
      ...Object.entries(t.headers ?? {}).map(([key, v]) => `wrk.headers[${q(key)}] = ${q(v)}`),
      ...(t.body ? [`wrk.body = ${q(t.body)}`] : []),
      t.uniqueKeys
        ? `request = function() i = i + 1; return wrk.format(nil, paths[(i % #paths) + 1], { ["Idempotency-Key"] = ${q(keyPrefix)} .. i }) end`
        : 'request = function() i = i + 1; return wrk.format(nil, paths[(i % #paths) + 1]) end',
      // The latency (µs) at every 0.1 % up to 99.9 %, for mergedPercentile (wrk gives 0 for 100 %).
      `done = function(summary, latency) local f = io.open(${q(quantiles)}, 'w'); for p = 1, 999 do f:write(latency:percentile(p / 10), '\\n') end; f:close() end`,
    ].join('\n'));
    const { stdout } = await promisify(execFile)('wrk', ['-t1', `-c${split(t)}`, `-d${seconds}s`, '-s', lua, base], { encoding: 'utf8' });
    return {
      n: Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0),
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
      q: readFileSync(quantiles, 'utf8').trim().split('\n').map(Number),
      bad: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(stdout)?.[1] ?? 0),
    };
  }));
  return {
    rps: runs.reduce((s, r) => s + r.rps, 0), p50: mergedPercentile(runs, 50), p99: mergedPercentile(runs, 99),
    bad: runs.reduce((s, r) => s + r.bad, 0),
  };
}

/** autocannon, one instance per server at once; their latency histograms are added together. */
async function loadAutocannon(t: Target, seconds: number): Promise<Figure> {
  let i = 0;
  const keyPrefix = `${KEY_RUN}-${keyLoad++}-`;
  const results = await Promise.all(t.bases.map((url) => autocannon({
    url, connections: split(t), duration: seconds, headers: t.headers, skipAggregateResult: true,
    requests: [{
      method: t.method ?? 'GET', ...(t.body ? { body: t.body } : {}),
      setupRequest: (req) => ({
        ...req, path: t.paths[i++ % t.paths.length]!,
        ...(t.uniqueKeys ? { headers: { ...req.headers, 'idempotency-key': `${keyPrefix}${i}` } } : {}),
      }),
    }],
  })));
  const raw = results as unknown as { totalCompletedRequests: number; duration: number }[];
  const r = (autocannon as unknown as { aggregateResult(rs: unknown[], o: object): autocannon.Result }).aggregateResult(results, { url: t.bases[0], connections: CONNECTIONS });
  return {
    rps: raw.reduce((s, x) => s + x.totalCompletedRequests / x.duration, 0), p50: r.latency.p50 * 1000, p99: r.latency.p99 * 1000,
    bad: r.non2xx + r.errors + r.timeouts,
  };
}

/**
 * Before a target of existing tasks is measured: its first and last task, asked of each of its
 * servers, are answered 200 with that task (its id in the answer, and no error code in a kie-style
 * envelope), so a figure is never that of fast error answers.
 */
async function verify(name: string, t: Target): Promise<void> {
  if ((t.method ?? 'GET') !== 'GET' || t.paths.length < 2) return;
  for (const base of t.bases) {
    for (const path of [t.paths[0]!, t.paths.at(-1)!]) {
      const id = decodeURIComponent(/(?:[=/])([^=/?]+)$/.exec(path)![1]!);
      const res = await fetch(base + path, { headers: t.headers });
      const text = await res.text();
      const code = (JSON.parse(text) as { code?: unknown }).code;
      if (res.status !== 200 || !text.includes(id) || (code !== undefined && code !== 200 && code !== 'success')) {
        throw new Error(`${name}: ${base}${path} answered ${res.status} ${text.slice(0, 300)}`);
      }
    }
  }
}

/** Loads one target and returns its req/s; `warm` first runs it unmeasured (see WARMUP). */
async function load(name: string, t: Target, warm: boolean): Promise<number> {
  if (warm) await verify(name, t);
  const run = (seconds: number) => (hasWrk ? loadWrk(t, seconds) : loadAutocannon(t, seconds));
  if (warm && WARMUP > 0) await run(WARMUP);
  const { result: f, cpu } = await withCpu(t.servers, () => run(SECONDS));
  console.log(`${name.padEnd(30)} ${f.rps.toFixed(0).padStart(8)} req/s   p50 ${ms(f.p50)}   p99 ${ms(f.p99)}   ${cpu}${f.bad ? `   NON-2XX/ERRORS ${f.bad}` : ''}`);
  if (f.bad) throw new Error(`${name}: ${f.bad} failed requests`);
  return f.rps;
}

/** One statement on the cluster's `postgres` database, the one the API processes use. */
async function onCluster(sql: string): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionString: cluster!.url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

// --- the tasks: TASKS succeeded tasks, a quarter per dialect, in SQLite and (postgres) PostgreSQL ---

const tasks: Task[] = [];
const ids = { kie: [] as string[], kkiai: [] as string[], openai: [] as string[], gemini: [] as string[] };
for (let i = 0; i < TASKS / 4; i++) {
  for (const [dialect, id] of [['kie', kieTaskId()], ['kkiai', kkiaiTaskId('veo3.1-fast', Date.now())], ['openai', videoId()], ['gemini', geminiTaskId()]] as const) {
    tasks.push(task(id, dialect, i));
    ids[dialect].push(id);
  }
}
const sqlite = openSqliteStore(join(dir, 'reelay.sqlite'));
for (const t of tasks) await sqlite.createTask(t);
await sqlite.close();
if (cluster) {
  const store = openPostgresStore(cluster.url);
  await store.migrate();
  for (let i = 0; i < tasks.length; i += 100) await Promise.all(tasks.slice(i, i + 100).map((t) => store.createTask(t)));
  await store.close();
  // Statistics, as autovacuum would have made them for a table in service: plans stay the same all run.
  await onCluster('ANALYZE');
}

const loader = hasWrk ? 'wrk (1 thread per server)' : 'autocannon';
console.log(`node ${process.version}, ${loader}, ${ROUNDS} rounds of ${SECONDS} s per target, ${CONNECTIONS} connections, ${TASKS} existing tasks`);
const helloPort = await freePort();
const hello = await start([here('./hello.js'), String(helloPort)], {}, (o) => o.includes('ready'));
const embedded = await reelay({ REELAY_DATA_DIR: dir });
// The same gateway with its key metered: the model priced in the routing file, and a balance for
// every create of the run, so each create also reserves its price in its transaction.
const meteredDir = join(dir, 'metered');
const meteredStore = openSqliteStore(join(meteredDir, 'reelay.sqlite'));
await meteredStore.addCredits(`t_${hashKey(KEY).slice(0, 16)}`, 1e12, Date.now(), 'bench');
await meteredStore.close();
writeFileSync(join(dir, 'priced.json'), JSON.stringify({ models: [{ match: '*', routes: [{ provider: 'local' }], price: { perSecond: 1 } }] }));
const metered = POSTGRES ? undefined : await reelay({ REELAY_DATA_DIR: meteredDir, REELAY_CONFIG: join(dir, 'priced.json') });
// Both API processes start at once on the migrated database; each stores the key (idempotent).
const apis = cluster
  ? await Promise.all([0, 1].map(() => reelay({ REELAY_DATABASE_URL: cluster.url, REELAY_DATA_DIR: join(dir, 'shared') }, 'api')))
  : [];
const headers = { authorization: `Bearer ${KEY}` };
const on = (servers: { child: ChildProcess; base: string }[]) => ({ bases: servers.map((s) => s.base), servers: servers.map((s) => s.child) });
const helloWorld: Target = { bases: [`http://127.0.0.1:${helloPort}`], servers: [hello], paths: ['/'] };
type Named = [name: string, goal: number, target: Target];
/** The kie and kkiai polls, on the given servers. */
const polls = (servers: { child: ChildProcess; base: string }[], suffix: string, goal: number): Named[] => [
  [`kie record-info${suffix}`, goal, { ...on(servers), headers, paths: ids.kie.map((id) => `/api/v1/veo/record-info?taskId=${id}`) }],
  [`kkiai query${suffix}`, goal, { ...on(servers), headers, paths: ids.kkiai.map((id) => `/v1/video/query?id=${encodeURIComponent(id)}`) }],
];
const generate: Target = {
  ...on([embedded]), method: 'POST', paths: ['/api/v1/veo/generate'],
  headers: { ...headers, 'content-type': 'application/json' },
  body: JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', aspect_ratio: '16:9', seeds: 12345 }),
};
const all: Named[] = POSTGRES
  ? [...polls([embedded], '', 0.75), ...polls(apis, ' (PG, 2 API)', 0.5)]
  : [
      ...polls([embedded], '', 0.75),
      ['openai retrieve', 0.75, { ...on([embedded]), headers, paths: ids.openai.map((id) => `/v1/videos/${id}`) }],
      ['gemini operation poll', 0.75, {
        ...on([embedded]), headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
        paths: ids.gemini.map((id) => `/v1beta/models/${MODELS.gemini}/operations/${id}`),
      }],
      ['kie generate (durable)', 0.25, generate],
      // The same create with a new Idempotency-Key each (the key is taken, then answered with the
      // task in its transaction), and the same key every time (each a replay of the first answer).
      ['kie generate, Idempotency-Key (durable)', 0.2, { ...generate, uniqueKeys: true }],
      ['kie generate, replayed', 0.25, { ...generate, headers: { ...generate.headers, 'idempotency-key': `${KEY_RUN}-replayed` } }],
      // A metered key: the create also reads the account and reserves the price in its transaction.
      ['kie generate, metered (durable)', 0.2, { ...generate, ...on([metered!]) }],
    ];

// (The PG/embedded ratios need both kinds of target.)
const targets = all.filter(([name]) => !process.env.BENCH_ONLY || name.includes(process.env.BENCH_ONLY));

// Rounds: hello, each target, hello, each target, …, hello. A target's ratio in a round is taken
// against the mean of the hello-world runs just before and just after it, so a slow spell of the
// shared machine weighs on both sides of the ratio.
const pgStats = cluster && process.env.BENCH_PG_STATS;
// Counted from here: the seeding and the start-up are not the polls'.
if (pgStats) {
  await onCluster('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await onCluster('SELECT pg_stat_statements_reset()');
}

const hellos = [await load('fastify hello-world', helloWorld, true)];
const figures = targets.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (const [i, [name, , t]] of targets.entries()) figures[i]!.push(await load(name, t, r === 0));
  hellos.push(await load('fastify hello-world', helloWorld, false));
}

const statements = pgStats
  ? (await onCluster(`SELECT calls, round(total_exec_time::numeric, 0) AS ms, round(mean_exec_time::numeric, 3) AS mean, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS q
      FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10`)).map((row) => `${String(row.calls).padStart(9)} calls ${String(row.ms).padStart(7)} ms  mean ${row.mean} ms  ${row.q}`)
  : [];
// SIGTERM lets each Reelay process write its CPU profile (BENCH_PROF) before it exits.
const servers = [hello, embedded.child, ...(metered ? [metered.child] : []), ...apis.map((a) => a.child)];
for (const s of servers) s.kill('SIGTERM');
await Promise.all(servers.map((s) => (s.exitCode === null && s.signalCode === null ? once(s, 'exit') : undefined)));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const times = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
console.log('');
console.log(`hello-world: ${hellos.map((h) => h.toFixed(0)).join(', ')} req/s`);
for (const [i, [name, goal]] of targets.entries()) {
  const ratios = figures[i]!.map((rps, r) => rps / ((hellos[r]! + hellos[r + 1]!) / 2));
  const verdict = median(ratios) >= goal ? 'met' : 'MISSED';
  console.log(`${`${name} / hello-world:`.padEnd(44)} median ${median(ratios).toFixed(2)}x  (rounds: ${times(ratios)})  goal >= ${goal}: ${verdict}`);
}
if (POSTGRES && targets.length === all.length) {
  // The same poll on PostgreSQL (2 processes) against the embedded default (1 process), per round.
  for (const [pgAt, embeddedAt] of [[2, 0], [3, 1]] as const) {
    const ratios = figures[pgAt]!.map((rps, r) => rps / figures[embeddedAt]![r]!);
    console.log(`${`${targets[pgAt]![0]} / embedded:`.padEnd(44)} median ${median(ratios).toFixed(2)}x  (rounds: ${times(ratios)})`);
  }
}
if (statements.length) console.log(['', 'PostgreSQL, costliest statements of the run (pg_stat_statements):', ...statements].join('\n'));
process.exit(0);
