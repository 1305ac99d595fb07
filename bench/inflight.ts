// In-flight capacity: BENCH_TASKS (100,000) tasks whose simulated generation takes BENCH_JOB_SECONDS
// (300 s). Reports each Reelay process's peak RSS and CPU, and how late polls ran after their
// scheduled time (Reelay's own histogram, /metrics), with the goals RSS <= 1 GB per process and
// poll lateness p99 <= 1 s.
//
// Reelay polls each job first after the provider's typical time (60 s here), then at a fifth of
// the job's age, at most every 30 s: about a dozen polls per job.
//
// By default one Reelay process on the embedded default (SQLite). BENCH_STORE=postgres starts a
// throwaway PostgreSQL cluster (as the tests do; stopped on every way out) and runs 1 API process
// (`serve --role api`, which takes the creates and answers the reads) and 2 engine processes
// (`serve --role engine`, which share the work) on it, all sharing the data folder. Each engine's
// histogram is read from its own /metrics; PostgreSQL's processes are measured from /proc, and what
// its backends wait on is sampled every second (BENCH_PG_STATS=1 adds its costliest statements).
//
// The machine is shared: every 30 s line also says how much CPU everything else took and how often
// a runnable task waited for a core, so a run slowed by other work can be told from a slow Reelay.
//
//   npm run build && node dist/bench/inflight.js        (about 8 minutes)
//   BENCH_STORE=postgres node dist/bench/inflight.js    (about 10 minutes)
//   BENCH_TASKS=5000 BENCH_JOB_SECONDS=60 BENCH_STORE=postgres node dist/bench/inflight.js
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Agent, request } from 'undici';
import { startCluster, stopCluster } from '../test/pg.js';
import { freePort } from '../test/server.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 100_000);
const JOB_SECONDS = Number(process.env.BENCH_JOB_SECONDS ?? 300);
const KEY = 'sk-bench-inflight';
// How the upstream is configured: first poll after TYPICAL s, then at most every POLL_MAX s.
const TYPICAL = Number(process.env.BENCH_TYPICAL_SECONDS ?? 60);
const POLL_MAX = Number(process.env.BENCH_POLL_MAX_SECONDS ?? 30);
const CONCURRENCY = process.env.REELAY_ENGINE_CONCURRENCY ?? '256';
const DOWNLOADS = process.env.REELAY_ENGINE_DOWNLOADS ?? '16';
const POOL = process.env.REELAY_DATABASE_POOL ?? '16';
const POSTGRES = process.env.BENCH_STORE === 'postgres';
// BENCH_PG_STATS=1 prints PostgreSQL's costliest statements (pg_stat_statements) at the end.
if (POSTGRES && process.env.BENCH_PG_STATS) process.env.REELAY_TEST_PG_STATS = '1';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-inflight-'));

// Every way out (an error, Ctrl-C, the end) ends the processes started here and the cluster
// (test/pg.ts's watchdog covers a SIGKILL of this process).
const children: ChildProcess[] = [];
let cluster: ReturnType<typeof startCluster> | undefined;
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (cluster) stopCluster(cluster);
  rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130));
if (POSTGRES) cluster = startCluster();

function spawnCli(args: string[], env: Record<string, string>): ChildProcess {
  const prof = process.env.BENCH_PROF && args[0] === 'serve' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  const child = spawn(process.execPath, ['--max-old-space-size=4096', ...prof, CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  return child;
}

async function healthy(url: string, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode}) before it answered`);
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU seconds (user + system) a process has used, from /proc; with `children`, also its reaped children's. */
function cpuSeconds(pid: number, children = false): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) / 100;
  } catch {
    return NaN;
  }
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Proportional set size: shared pages divided among the processes that map them (PostgreSQL's shared buffers). */
function pssMb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The cluster's postmaster and its live children (backends, walwriter, …), from /proc. */
function postgresPids(): { postmaster: number; children: number[] } | undefined {
  if (!cluster) return undefined;
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  const kids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === postmaster) kids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return { postmaster, children: kids };
}

/**
 * PostgreSQL's memory and CPU seconds. A sum of RSS would count the shared buffers once per
 * process: the total is the sum of PSS, and `rss` is the largest single process's.
 */
function postgresUsage(): { rss: number; pss: number; cpu: number; processes: number } | undefined {
  const p = postgresPids();
  if (!p) return undefined;
  const all = [p.postmaster, ...p.children];
  // The postmaster's own time, its reaped backends' (cutime, cstime) and the live ones'.
  const cpu = cpuSeconds(p.postmaster, true) + p.children.reduce((s, pid) => s + (cpuSeconds(pid) || 0), 0);
  return { rss: Math.max(...all.map(rssMb)), pss: all.reduce((s, pid) => s + pssMb(pid), 0), cpu, processes: all.length };
}

/** The machine's CPU time by kind, in seconds over all cores (/proc/stat): what else ran, and steal. */
function machineCpu(): { busy: number; iowait: number; steal: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  return { busy: (user + nice + system + irq + softirq) / 100, iowait: iowait / 100, steal: steal / 100, idle: idle / 100 };
}

/** Seconds in which some runnable task waited for a CPU (/proc/pressure/cpu): the machine's contention. */
function cpuPressure(): number {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? NaN) / 1e6;
  } catch {
    return NaN;
  }
}

/** One Prometheus sample: its labels and value. */
interface Sample {
  labels: Record<string, string>;
  value: number;
}

function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

type Buckets = { le: number; count: number }[];

/** One step's histogram of lateness, as cumulative bucket counts. */
function lateness(text: string, step: string): Buckets {
  return samples(text, 'reelay_engine_step_lateness_seconds_bucket')
    .filter((s) => s.labels.step === step)
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
}

function stepCount(text: string, step: string): number {
  return samples(text, 'reelay_engine_steps_total').find((s) => s.labels.step === step)?.value ?? 0;
}

const bucket = (h: Buckets, le: number) => h.find((b) => b.le === le)?.count ?? 0;
const total = (h: Buckets) => bucket(h, Infinity);
/** The bucket bound under which a quantile of the observations falls. */
const quantile = (h: Buckets, q: number) => h.find((b) => b.count >= total(h) * q)?.le ?? NaN;
const within = (h: Buckets, le: number) => bucket(h, le) / Math.max(1, total(h));
const sum = (hs: Buckets[]): Buckets => (hs[0] ?? []).map((b) => ({ le: b.le, count: hs.reduce((s, h) => s + bucket(h, b.le), 0) }));
const minus = (a: Buckets, b: Buckets): Buckets => a.map((x) => ({ le: x.le, count: x.count - bucket(b, x.le) }));

const simPort = await freePort();
const sim = spawnCli(['sim', '--port', String(simPort), '--duration', String(JOB_SECONDS * 1000), '--video-seconds', '1', '--small', '--dir', join(dir, 'sim')], {});
await healthy(`http://127.0.0.1:${simPort}/healthz`, sim);
// maxInFlight is above the task count: on PostgreSQL it is counted across the engines.
writeFileSync(join(dir, 'reelay.json'), JSON.stringify({
  providers: { upstream: { type: 'kie', baseUrl: `http://127.0.0.1:${simPort}`, apiKeyEnv: 'SIM_KEY', typicalSeconds: TYPICAL, pollMaxSeconds: POLL_MAX, stallSeconds: JOB_SECONDS * 3, maxInFlight: Math.max(1_000_000, TASKS) } },
  models: [{ match: '*', routes: [{ provider: 'upstream' }] }],
}));
const env = {
  REELAY_DATA_DIR: join(dir, 'data'), REELAY_API_KEYS: KEY, REELAY_CONFIG: join(dir, 'reelay.json'), SIM_KEY: 'sk-sim',
  LOG_LEVEL: 'warn', REELAY_METRICS: 'on', REELAY_TASK_DEADLINE_SECONDS: String(JOB_SECONDS * 4), REELAY_ENGINE_CONCURRENCY: CONCURRENCY, REELAY_ENGINE_DOWNLOADS: DOWNLOADS,
  ...(cluster ? { REELAY_DATABASE_URL: cluster.url, REELAY_DATABASE_POOL: POOL } : {}),
};

/** A Reelay process, and the highest RSS it reached. */
interface Proc {
  name: string;
  child: ChildProcess;
  base: string;
  peakRss: number;
  /** The longest event-loop delay seen since the last window line (prom-client resets its own at each scrape). */
  loopMax: number;
}
async function serve(name: string, role: string): Promise<Proc> {
  const port = await freePort();
  const child = spawnCli(['serve', '--role', role], { ...env, PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  await healthy(`${base}/healthz`, child);
  return { name, child, base, peakRss: 0, loopMax: 0 };
}
// The API process migrates the database before the engines start.
const procs = POSTGRES ? [await serve('api', 'api')] : [await serve('reelay', 'all')];
if (POSTGRES) procs.push(await serve('engine 1', 'engine'), await serve('engine 2', 'engine'));
const api = procs[0]!;
const engines = POSTGRES ? procs.slice(1) : procs;
// Reelay's log lines name the process by pid.
console.log(`pids: ${procs.map((p) => `${p.name} ${p.child.pid}`).join(', ')}, simulator ${sim.pid}`);

// What PostgreSQL's backends are doing, sampled every second: active ones by what they wait on.
const watcher = cluster ? new pg.Client({ connectionString: cluster.url }) : undefined;
watcher?.on('error', () => {});
await watcher?.connect();
let activity = new Map<string, number>();
let activitySamples = 0;
async function sampleActivity(): Promise<void> {
  if (!watcher) return;
  const { rows } = await watcher.query<{ what: string; n: string }>(
    `SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu') AS what, count(*) AS n FROM pg_stat_activity
     WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1`,
  );
  activitySamples++;
  for (const r of rows) activity.set(r.what, (activity.get(r.what) ?? 0) + Number(r.n));
}
const activityLine = () => {
  const top = [...activity].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([what, n]) => `${what} ${(n / Math.max(1, activitySamples)).toFixed(1)}`);
  activity = new Map();
  activitySamples = 0;
  return `postgres backends active (mean) ${top.join(', ') || 'none'}`;
};

let peakPg = { rss: 0, pss: 0 };
const sampler = setInterval(() => {
  for (const p of procs) p.peakRss = Math.max(p.peakRss, rssMb(p.child.pid!));
  const pgNow = postgresUsage();
  if (pgNow) peakPg = { rss: Math.max(peakPg.rss, pgNow.rss), pss: Math.max(peakPg.pss, pgNow.pss) };
  sampleActivity().catch(() => {});
}, 1000);

// Create every task as fast as the API takes them (64 at a time).
const agent = new Agent({ connections: 64 });
const body = JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast' });
const ids: string[] = [];
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 64 }, async () => {
  while (next < TASKS) {
    next++;
    const res = await request(`${api.base}/api/v1/veo/generate`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body, dispatcher: agent });
    const a = (await res.body.json()) as { code: number; data?: { taskId: string } };
    if (a.code !== 200 || !a.data) throw new Error(`create failed: ${JSON.stringify(a)}`);
    ids.push(a.data.taskId);
  }
}));
const createSeconds = (performance.now() - t0) / 1000;
const metricsText = async (p: Proc) => {
  const text = await fetch(`${p.base}/metrics`).then((r) => r.text(), (e: Error) => {
    throw new Error(`${p.name} (exit code ${p.child.exitCode}, signal ${p.child.signalCode}) did not answer /metrics: ${e.message}`);
  });
  const lag = /^reelay_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
  if (lag) p.loopMax = Math.max(p.loopMax, Number(lag[1]));
  return text;
};
// Submissions started, over the engines (a submission the gate turns away counts again when retried).
const submitted = async () => (await Promise.all(engines.map(metricsText))).reduce((n, t) => n + stepCount(t, 'submit'), 0);
console.log(`created ${TASKS} tasks in ${createSeconds.toFixed(1)} s (${(TASKS / createSeconds).toFixed(0)}/s); ${await submitted()} submissions started by then`);

// Wait until every task has finished: sample a few ids, then check them all.
const outcome = async (id: string): Promise<number> => {
  const res = await request(`${api.base}/api/v1/veo/record-info?taskId=${id}`, { headers: { authorization: `Bearer ${KEY}` }, dispatcher: agent });
  const a = (await res.body.json()) as { data: { successFlag: number } };
  return a.data.successFlag;
};
const started = performance.now();
let lastLog = 0;
// CPU per 30 s window, per process.
const cpuNow = () => ({ at: performance.now(), procs: procs.map((p) => cpuSeconds(p.child.pid!)), sim: cpuSeconds(sim.pid!), pg: postgresUsage()?.cpu ?? NaN, own: process.cpuUsage(), machine: machineCpu(), pressure: cpuPressure() });
let lastCpu = cpuNow();
const cpuLine = () => {
  const now = cpuNow();
  const pct = (a: number, b: number) => `${((100 * (a - b)) / ((now.at - lastCpu.at) / 1000)).toFixed(0)} %`;
  // Everything else that ran on the machine: its busy time less that of the processes above and this one.
  const ours = now.procs.reduce((a, b, i) => a + b - lastCpu.procs[i]!, 0) + now.sim - lastCpu.sim + (POSTGRES ? now.pg - lastCpu.pg : 0) + (now.own.user + now.own.system - lastCpu.own.user - lastCpu.own.system) / 1e6;
  const m = now.machine;
  const l = lastCpu.machine;
  const line = `CPU ${procs.map((p, i) => `${p.name} ${pct(now.procs[i]!, lastCpu.procs[i]!)}`).join(', ')}, simulator ${pct(now.sim, lastCpu.sim)}${POSTGRES ? `, postgres ${pct(now.pg, lastCpu.pg)}` : ''}, other ${pct(m.busy - l.busy - ours, 0)}; machine idle ${pct(m.idle, l.idle)}, iowait ${pct(m.iowait, l.iowait)}, steal ${pct(m.steal, l.steal)}, some task waiting for a CPU ${pct(now.pressure, lastCpu.pressure)} of the time`;
  lastCpu = now;
  return line;
};
// Lateness per 30 s window (from the histograms' growth), per engine, to see when polls ran late.
let lastPolls: Buckets[] = engines.map(() => []);
let lastSubmits = engines.map(() => 0);
let allSubmittedAt: number | undefined;
const windowLine = async () => {
  const texts = await Promise.all(engines.map(metricsText));
  const submits = texts.map((t) => stepCount(t, 'submit'));
  const parts = texts.map((t, i) => {
    const now = lateness(t, 'poll');
    const d = minus(now, lastPolls[i]!);
    lastPolls[i] = now;
    const n = total(d);
    const polls = n === 0 ? 'no polls' : `${n} polls, ${(100 * within(d, 1)).toFixed(2)} % within 1 s, ${(100 * within(d, 0.1)).toFixed(2)} % within 0.1 s`;
    const line = `${engines.length > 1 ? `${engines[i]!.name} ` : ''}${submits[i]! - lastSubmits[i]!} submits, ${polls}, event loop delay max ${(engines[i]!.loopMax * 1000).toFixed(0)} ms`;
    engines[i]!.loopMax = 0;
    return line;
  });
  lastSubmits = submits;
  return parts.join('; ');
};
const rssLine = () => procs.map((p) => `${p.name} ${rssMb(p.child.pid!).toFixed(0)} MB (peak ${p.peakRss.toFixed(0)})`).join(', ');
const deadline = started + (JOB_SECONDS * 6 + 600) * 1000;
let outcomes: number[] = [];
for (;;) {
  await new Promise((r) => setTimeout(r, 5000));
  if (performance.now() > deadline) throw new Error(`tasks still running ${((performance.now() - started) / 1000).toFixed(0)} s after the creates`);
  for (const p of procs) if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode})`);
  const elapsed = (performance.now() - started) / 1000;
  if (allSubmittedAt === undefined && (await submitted()) >= TASKS) allSubmittedAt = (performance.now() - t0) / 1000;
  if (elapsed - lastLog >= 30) {
    lastLog = elapsed;
    const pgNow = POSTGRES ? postgresUsage() : undefined;
    const pgLine = pgNow ? `; postgres ${pgNow.processes} processes, pss ${pgNow.pss.toFixed(0)} MB (largest rss ${pgNow.rss.toFixed(0)} MB)` : '';
    console.log(`  ${elapsed.toFixed(0)} s: rss ${rssLine()}${pgLine}; in the last 30 s ${await windowLine()}; ${cpuLine()}${POSTGRES ? `; ${activityLine()}` : ''}`);
  }
  if (elapsed < JOB_SECONDS) continue;
  const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(TASKS / 200)) === 0);
  if ((await Promise.all(sample.map(outcome))).some((f) => f === 0)) continue;
  outcomes = [];
  for (let i = 0; i < ids.length; i += 256) {
    const chunk = await Promise.all(ids.slice(i, i + 256).map(outcome));
    if (chunk.some((f) => f === 0)) break;
    outcomes.push(...chunk);
  }
  if (outcomes.length === ids.length) break;
}
const totalSeconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
const texts = await Promise.all(engines.map(metricsText));
if (process.env.BENCH_VERBOSE) for (const [i, t] of texts.entries()) console.log(`--- ${engines[i]!.name}\n${t.split('\n').filter((l) => l.startsWith('reelay_engine_')).join('\n')}`);
const cpu = procs.map((p) => cpuSeconds(p.child.pid!));
const simCpu = cpuSeconds(sim.pid!);
const pgEnd = postgresUsage();
let statements: string[] = [];
if (watcher && process.env.BENCH_PG_STATS) {
  await watcher.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const { rows } = await watcher.query<{ calls: string; ms: string; mean: string; q: string }>(
    `SELECT calls, round(total_exec_time::numeric, 0) AS ms, round(mean_exec_time::numeric, 3) AS mean, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS q
     FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20`,
  );
  statements = rows.map((r) => `${r.calls.padStart(8)} ${r.ms.padStart(8)} ms ${r.mean.padStart(9)} ms  ${r.q}`);
}
await watcher?.end();

for (const p of procs) p.child.kill('SIGTERM');
sim.kill('SIGTERM');
await agent.close();
await Promise.all(procs.map((p) => once(p.child, 'exit')));

const polls = texts.map((t) => lateness(t, 'poll'));
const submitLateness = texts.map((t) => lateness(t, 'submit'));
const all = sum(polls);
const allSubmits = sum(submitLateness);
const ok = (b: boolean) => (b ? 'met' : 'MISSED');
const succeeded = outcomes.filter((f) => f === 1).length;
console.log('');
console.log(`node ${process.version}, ${POSTGRES ? 'PostgreSQL, 1 API + 2 engine processes' : 'embedded (SQLite, 1 process)'}, ${TASKS} tasks, simulated generation ${JOB_SECONDS} s, first poll at ${TYPICAL} s, polls at most every ${POLL_MAX} s, engine concurrency ${CONCURRENCY}, downloads ${DOWNLOADS}${POSTGRES ? `, pool ${POOL}` : ''}`);
console.log(`created in ${createSeconds.toFixed(1)} s; every submission started (looked at every 5 s) by ${allSubmittedAt?.toFixed(0) ?? "?"} s after the first create; all finished after ${totalSeconds.toFixed(0)} s; ${succeeded} succeeded, ${TASKS - succeeded} failed; ${total(all)} polls`);
for (const [i, e] of engines.entries()) {
  const t = texts[i]!;
  const h = polls[i]!;
  const share = (n: number, of: number) => `${n} (${((100 * n) / Math.max(1, of)).toFixed(1)} %)`;
  console.log(`${e.name}: submits ${share(stepCount(t, 'submit'), TASKS)}, polls ${share(total(h), total(all))}; poll lateness p50 <= ${quantile(h, 0.5)} s, p99 <= ${quantile(h, 0.99)} s, ${(100 * within(h, 0.1)).toFixed(2)} % within 0.1 s, ${(100 * within(h, 1)).toFixed(2)} % within 1 s   goal p99 <= 1 s: ${ok(within(h, 1) >= 0.99)}; submit lateness p50 <= ${quantile(submitLateness[i]!, 0.5)} s, p99 <= ${quantile(submitLateness[i]!, 0.99)} s`);
}
if (engines.length > 1) console.log(`both engines: poll lateness p50 <= ${quantile(all, 0.5)} s, p99 <= ${quantile(all, 0.99)} s, ${(100 * within(all, 1)).toFixed(2)} % within 1 s; submit lateness p50 <= ${quantile(allSubmits, 0.5)} s, p99 <= ${quantile(allSubmits, 0.99)} s`);
for (const [i, p] of procs.entries()) console.log(`${p.name}: peak RSS ${p.peakRss.toFixed(0)} MB   goal <= 1024 MB: ${ok(p.peakRss <= 1024)}; CPU ${cpu[i]!.toFixed(1)} s`);
console.log(`simulator: CPU ${simCpu.toFixed(1)} s`);
if (pgEnd) console.log(`postgres (${pgEnd.processes} processes at the end): peak PSS summed ${peakPg.pss.toFixed(0)} MB, largest process's peak RSS ${peakPg.rss.toFixed(0)} MB; CPU ${pgEnd.cpu.toFixed(1)} s`);
if (statements.length) console.log(`PostgreSQL's costliest statements (calls, total, mean):\n${statements.join('\n')}`);
process.exit(0);
