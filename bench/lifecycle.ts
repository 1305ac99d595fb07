// Full lifecycles per second, embedded mode, against the upstream simulator.
//
// One lifecycle: a client creates a task (kie `POST /api/v1/veo/generate` with a callBackUrl,
// committed to SQLite before the answer); the engine submits it to the simulated kie upstream,
// polls it (the simulator completes jobs at once), downloads the result (a 1 s, ~20 kB MP4),
// probes it, commits the success with its callback in the outbox; the deliverer POSTs the callback
// to a receiver in this process. The figure counts callbacks received per second.
//
// Three processes share the 2 cores: Reelay, the simulator and this one (load and receiver).
// The first BENCH_WARMUP lifecycles are not measured (the JIT compiles the paths, the result
// shard folders are made); rates, latencies and CPU times are those of the BENCH_TASKS after them.
//
//   npm run build && node dist/bench/lifecycle.js
//   (BENCH_TASKS=20000, BENCH_WARMUP=5000, BENCH_INFLIGHT=1000; BENCH_THREADS=1 lists Reelay's threads' CPU)
//
// BENCH_STORE=postgres runs Reelay on a throwaway PostgreSQL cluster (started here, as the tests
// do) instead of SQLite; BENCH_PROCESSES=split then runs 1 API process and 2 engine processes
// (`serve --role`) sharing it and the data folder. PostgreSQL's own CPU is not in the figures.
// `bench/scale.ts` runs the three modes one after the other and prints their ratios.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Agent } from 'undici';
import { startCluster, stopCluster } from '../test/pg.js';
import { freePort } from '../test/server.js';

const MEASURED = Number(process.env.BENCH_TASKS ?? 20_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5_000);
const TASKS = WARMUP + MEASURED;
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 1_000);
const KEY = 'sk-bench-lifecycle';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
// BENCH_PROF=dir writes a CPU profile of Reelay and of the simulator there.
const profFlags = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-lifecycle-'));
const POSTGRES = process.env.BENCH_STORE === 'postgres';
const SPLIT = POSTGRES && process.env.BENCH_PROCESSES === 'split';
// BENCH_PG_STATS=1 prints PostgreSQL's costliest statements (pg_stat_statements) at the end.
if (process.env.BENCH_PG_STATS) process.env.REELAY_TEST_PG_STATS = '1';
const cluster = POSTGRES ? startCluster() : undefined;
process.on('exit', () => cluster && stopCluster(cluster));

function spawnCli(args: string[], env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...profFlags, CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const check = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve(child);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (c) => reject(new Error(`${args[0]} exited ${c}: ${out}`)));
  });
}

// CPU seconds a process (or one of its threads) has spent, user and kernel, from /proc.
const cpuOf = (pid: number | undefined, thread?: number) => {
  try {
    const f = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
  } catch { return { user: NaN, sys: NaN }; }
};
type Cpu = { user: number; sys: number };
// Reelay's main thread (its event loop) is the thread whose id is the process id.
const snapshot = (): { at: number; reelay: Cpu; reelayMain: Cpu; sim: Cpu; load: Cpu } => {
  const own = process.cpuUsage();
  const sum = (cs: Cpu[]) => cs.reduce((a, b) => ({ user: a.user + b.user, sys: a.sys + b.sys }), { user: 0, sys: 0 });
  return { at: performance.now(), reelay: sum(reelays.map((r) => cpuOf(r.pid))), reelayMain: sum(reelays.map((r) => cpuOf(r.pid, r.pid))), sim: cpuOf(sim.pid), load: { user: own.user / 1e6, sys: own.system / 1e6 } };
};
let warm: ReturnType<typeof snapshot> | undefined;

// --- the callback receiver ---
const created = new Map<string, number>();
const latencies: number[] = [];
let callbacks = 0;
let duplicates = 0;
const seen = new Set<string>();
let failedCallbacks = 0;
let allDone: () => void;
// Load workers waiting for a lifecycle to end (no timer polling: the load must not eat the CPU it measures).
const room: (() => void)[] = [];
const done = new Promise<void>((r) => (allDone = r));
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.writeHead(200).end('ok');
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { code: number; data: { taskId: string } };
    if (body.code !== 200) failedCallbacks++;
    // Callbacks are at least once: count each task once.
    if (seen.has(body.data.taskId)) {
      duplicates++;
      return;
    }
    seen.add(body.data.taskId);
    const t0 = created.get(body.data.taskId);
    if (t0 !== undefined && warm) latencies.push(performance.now() - t0);
    room.shift()?.();
    if (++callbacks === WARMUP) warm = snapshot();
    if (callbacks === TASKS) allDone();
  });
});
receiver.listen(0, '127.0.0.1');
await once(receiver, 'listening');
const callbackUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/cb`;

// --- the simulator and Reelay ---
const simPort = await freePort();
const sim = await spawnCli(['sim', '--port', String(simPort), '--duration', '0', '--video-seconds', '1', '--small', '--dir', join(dir, 'sim')], {}, /listening/);
writeFileSync(join(dir, 'reelay.json'), JSON.stringify({
  providers: { upstream: { type: 'kie', baseUrl: `http://127.0.0.1:${simPort}`, apiKeyEnv: 'SIM_KEY', typicalSeconds: 0, maxInFlight: 100_000 } },
  models: [{ match: '*', routes: [{ provider: 'upstream' }] }],
}));
const env = {
  ...process.env, REELAY_DATA_DIR: join(dir, 'data'), REELAY_API_KEYS: KEY, REELAY_CONFIG: join(dir, 'reelay.json'),
  SIM_KEY: 'sk-sim', REELAY_URL_ALLOWLIST: '127.0.0.1', LOG_LEVEL: 'warn', REELAY_ENGINE_CONCURRENCY: process.env.REELAY_ENGINE_CONCURRENCY ?? '256', REELAY_ENGINE_DOWNLOADS: process.env.REELAY_ENGINE_DOWNLOADS ?? '64',
  ...(cluster ? { REELAY_DATABASE_URL: cluster.url, REELAY_DATABASE_POOL: '16' } : {}),
};
const start = async (role: string): Promise<{ child: ChildProcess; base: string }> => {
  const port = await freePort();
  const child = spawn(process.execPath, [...profFlags, CLI, 'serve', '--role', role], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, base };
};
const first = await start(SPLIT ? 'api' : 'all');
const base = first.base;
const reelays: ChildProcess[] = [first.child, ...(SPLIT ? [(await start('engine')).child, (await start('engine')).child] : [])];
const reelay = reelays[0]!;

// --- the load: TASKS creates, at most INFLIGHT lifecycles open at once ---
const agent = new Agent({ connections: 64, pipelining: 1 });
const body = JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', callBackUrl: callbackUrl });
let sent = 0;
let createErrors = 0;
if (WARMUP === 0) warm = snapshot();
async function worker(): Promise<void> {
  while (sent < TASKS) {
    // Keep at most INFLIGHT lifecycles open: wait while too many are between create and callback.
    while (sent - callbacks >= INFLIGHT) await new Promise<void>((r) => room.push(r));
    if (sent >= TASKS) break; // others sent the rest while this one waited
    sent++;
    const t0 = performance.now();
    const res = await agent.request({ origin: base, path: '/api/v1/veo/generate', method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body });
    const answer = (await res.body.json()) as { code: number; data?: { taskId: string } };
    if (answer.code !== 200 || !answer.data) {
      createErrors++;
      continue;
    }
    created.set(answer.data.taskId, t0);
  }
}
await Promise.all(Array.from({ length: 32 }, worker));
const timeout = setTimeout(() => {
  console.error(`timed out: ${callbacks} of ${TASKS} callbacks`);
  process.exit(1);
}, 600_000);
await done;
clearTimeout(timeout);
// Where the two cores went during the measured lifecycles.
const end = snapshot();
const seconds = (end.at - warm!.at) / 1000;
const minus = (a: Cpu, b: Cpu): Cpu => ({ user: a.user - b.user, sys: a.sys - b.sys });
const cpu = { reelay: minus(end.reelay, warm!.reelay), reelayMain: minus(end.reelayMain, warm!.reelayMain), sim: minus(end.sim, warm!.sim), load: minus(end.load, warm!.load) };
latencies.sort((a, b) => a - b);
const fmt = (c: Cpu) => `${(c.user + c.sys).toFixed(1)} (${c.sys.toFixed(1)} in the kernel)`;
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(0);

if (process.env.BENCH_THREADS) {
  // Each of Reelay's threads: name and CPU seconds.
  for (const tid of readdirSync(`/proc/${reelay.pid}/task`)) {
    const name = readFileSync(`/proc/${reelay.pid}/task/${tid}/comm`, 'utf8').trim();
    const c = cpuOf(reelay.pid, Number(tid));
    console.log(`  reelay thread ${tid} ${name}: ${(c.user + c.sys).toFixed(2)} s (${c.sys.toFixed(2)} kernel)`);
  }
}
if (cluster && process.env.BENCH_PG_STATS) {
  // The statements PostgreSQL spent the most time on, over the whole run (warm-up included).
  const c = new pg.Client({ connectionString: cluster.url });
  await c.connect();
  await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const { rows } = await c.query<{ calls: string; ms: string; mean: string; q: string }>(
    `SELECT calls, round(total_exec_time::numeric, 0) AS ms, round(mean_exec_time::numeric, 3) AS mean,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS q
     FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`,
  );
  console.log('PostgreSQL statements by total time: calls, total ms, mean ms, text');
  for (const r of rows) console.log(`${r.calls.padStart(7)} ${r.ms.padStart(7)} ${r.mean.padStart(8)}  ${r.q}`);
  await c.end();
}
for (const r of reelays) r.kill('SIGTERM');
sim.kill('SIGTERM');
receiver.close();
await agent.close();
await Promise.all([...reelays.map((r) => once(r, 'exit')), once(sim, 'exit')]);
rmSync(dir, { recursive: true, force: true });

console.log(`mode: ${POSTGRES ? `PostgreSQL, ${SPLIT ? '1 API + 2 engine processes' : '1 process'}` : 'embedded (SQLite, 1 process)'}`);
console.log(`node ${process.version}, ${MEASURED} lifecycles measured after ${WARMUP}, at most ${INFLIGHT} open at once, engine concurrency ${process.env.REELAY_ENGINE_CONCURRENCY ?? '256'}, downloads ${process.env.REELAY_ENGINE_DOWNLOADS ?? '64'}`);
console.log(`lifecycle = create (durable) + submit + poll + download and probe + finalize + callback delivered`);
console.log(`${(MEASURED / seconds).toFixed(0)} lifecycles/s  (${seconds.toFixed(1)} s)   create→callback p50 ${pct(50)} ms  p99 ${pct(99)} ms`);
console.log(`CPU seconds: reelay ${fmt(cpu.reelay)} of which its main thread ${(cpu.reelayMain.user + cpu.reelayMain.sys).toFixed(1)} (${((100 * (cpu.reelayMain.user + cpu.reelayMain.sys)) / seconds).toFixed(0)} % of the run), simulator ${fmt(cpu.sim)}, load and receiver ${fmt(cpu.load)} (the run had ${(2 * seconds).toFixed(1)} core-seconds)`);
console.log(`failed creates ${createErrors}, failure callbacks ${failedCallbacks}, repeated callbacks ${duplicates}   goal >= 2000/s: ${MEASURED / seconds >= 2000 ? 'met' : 'MISSED'}`);
process.exit(0);
