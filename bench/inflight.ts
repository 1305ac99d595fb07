// In-flight capacity: BENCH_TASKS (100,000) tasks whose simulated generation takes BENCH_JOB_SECONDS
// (300 s), in one Reelay process on the embedded default. Reports the process's peak RSS and how
// late polls ran after their scheduled time (Reelay's own histogram, /metrics), with the goals
// RSS <= 1 GB and poll lateness p99 <= 1 s.
//
// Reelay polls each job first after the provider's typical time (60 s here), then at a fifth of
// the job's age, at most every 30 s: about a dozen polls per job.
//
//   npm run build && node dist/bench/inflight.js        (about 8 minutes)
//   BENCH_TASKS=20000 BENCH_JOB_SECONDS=120 node dist/bench/inflight.js
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { freePort } from '../test/server.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 100_000);
const JOB_SECONDS = Number(process.env.BENCH_JOB_SECONDS ?? 300);
const KEY = 'sk-bench-inflight';
// How the upstream is configured: first poll after TYPICAL s, then at most every POLL_MAX s.
const TYPICAL = Number(process.env.BENCH_TYPICAL_SECONDS ?? 60);
const POLL_MAX = Number(process.env.BENCH_POLL_MAX_SECONDS ?? 30);
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-inflight-'));

function spawnCli(args: string[], env: Record<string, string>): ChildProcess {
  const prof = process.env.BENCH_PROF && args[0] === 'serve' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  return spawn(process.execPath, ['--max-old-space-size=4096', ...prof, CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
}

async function healthy(url: string): Promise<void> {
  for (;;) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Parses one Prometheus histogram (with a label filter) into cumulative bucket counts. */
function histogram(text: string, name: string, labels: string): { le: number; count: number }[] {
  const out: { le: number; count: number }[] = [];
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)",${labels}\\} (\\d+)$`, 'gm');
  for (const m of text.matchAll(re)) out.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  return out;
}

const simPort = await freePort();
const sim = spawnCli(['sim', '--port', String(simPort), '--duration', String(JOB_SECONDS * 1000), '--video-seconds', '1', '--small', '--dir', join(dir, 'sim')], {});
await healthy(`http://127.0.0.1:${simPort}/healthz`);
writeFileSync(join(dir, 'reelay.json'), JSON.stringify({
  providers: { upstream: { type: 'kie', baseUrl: `http://127.0.0.1:${simPort}`, apiKeyEnv: 'SIM_KEY', typicalSeconds: TYPICAL, pollMaxSeconds: POLL_MAX, stallSeconds: JOB_SECONDS * 3, maxInFlight: 1_000_000 } },
  models: [{ match: '*', routes: [{ provider: 'upstream' }] }],
}));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const reelay = spawnCli(['serve'], {
  PORT: String(port), REELAY_DATA_DIR: join(dir, 'data'), REELAY_API_KEYS: KEY, REELAY_CONFIG: join(dir, 'reelay.json'), SIM_KEY: 'sk-sim',
  LOG_LEVEL: 'warn', REELAY_METRICS: 'on', REELAY_TASK_DEADLINE_SECONDS: String(JOB_SECONDS * 4), REELAY_ENGINE_CONCURRENCY: process.env.REELAY_ENGINE_CONCURRENCY ?? '256', REELAY_ENGINE_DOWNLOADS: process.env.REELAY_ENGINE_DOWNLOADS ?? '16',
});
await healthy(`${base}/healthz`);

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(reelay.pid!))), 1000);

// Create every task as fast as the API takes them (64 at a time).
const agent = new Agent({ connections: 64 });
const body = JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast' });
const ids: string[] = [];
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 64 }, async () => {
  while (next < TASKS) {
    next++;
    const res = await request(`${base}/api/v1/veo/generate`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body, dispatcher: agent });
    const a = (await res.body.json()) as { code: number; data?: { taskId: string } };
    if (a.code !== 200 || !a.data) throw new Error(`create failed: ${JSON.stringify(a)}`);
    ids.push(a.data.taskId);
  }
}));
const createSeconds = (performance.now() - t0) / 1000;
console.log(`created ${TASKS} tasks in ${createSeconds.toFixed(1)} s`);

// Wait until every task has finished: sample a few ids, then check them all.
const metricsText = () => fetch(`${base}/metrics`).then((r) => r.text());
const finished = async (id: string) => {
  const res = await request(`${base}/api/v1/veo/record-info?taskId=${id}`, { headers: { authorization: `Bearer ${KEY}` }, dispatcher: agent });
  const a = (await res.body.json()) as { data: { successFlag: number } };
  return a.data.successFlag !== 0;
};
const started = performance.now();
let lastLog = 0;
let lastCpu = { at: performance.now(), reelay: cpuSeconds(reelay.pid!), sim: cpuSeconds(sim.pid!) };
const cpuLine = () => {
  const now = { at: performance.now(), reelay: cpuSeconds(reelay.pid!), sim: cpuSeconds(sim.pid!) };
  const secs = (now.at - lastCpu.at) / 1000;
  const line = `CPU reelay ${((100 * (now.reelay - lastCpu.reelay)) / secs).toFixed(0)} %, simulator ${((100 * (now.sim - lastCpu.sim)) / secs).toFixed(0)} %`;
  lastCpu = now;
  return line;
};
// Lateness per 30 s window (from the histogram's growth), to see when polls ran late.
let lastPolls: { le: number; count: number }[] = [];
const windowLine = async () => {
  const now = histogram(await metricsText(), 'reelay_engine_step_lateness_seconds', 'step="poll"');
  const delta = (le: number) => (now.find((b) => b.le === le)?.count ?? 0) - (lastPolls.find((b) => b.le === le)?.count ?? 0);
  const [n, in1, in01] = [delta(Infinity), delta(1), delta(0.1)];
  lastPolls = now;
  return n === 0 ? 'no polls' : `${n} polls, ${((100 * in1) / n).toFixed(2)} % within 1 s, ${((100 * in01) / n).toFixed(2)} % within 0.1 s`;
};
for (;;) {
  await new Promise((r) => setTimeout(r, 5000));
  const elapsed = (performance.now() - started) / 1000;
  if (elapsed - lastLog >= 30) {
    lastLog = elapsed;
    console.log(`  ${elapsed.toFixed(0)} s: rss ${rssMb(reelay.pid!).toFixed(0)} MB (peak ${peakRss.toFixed(0)}); in the last 30 s ${await windowLine()}; ${cpuLine()}`);
  }
  if (elapsed < JOB_SECONDS) continue;
  const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(TASKS / 200)) === 0);
  if (!(await Promise.all(sample.map(finished))).every(Boolean)) continue;
  let all = true;
  for (let i = 0; i < ids.length && all; i += 256) all = (await Promise.all(ids.slice(i, i + 256).map(finished))).every(Boolean);
  if (all) break;
}
const totalSeconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
const text = await metricsText();
if (process.env.BENCH_VERBOSE) console.log(text.split('\n').filter((l) => l.startsWith('reelay_engine_')).join('\n'));
const polls = histogram(text, 'reelay_engine_step_lateness_seconds', 'step="poll"');
const total = polls.at(-1)?.count ?? 0;
const within = (s: number) => (polls.find((b) => b.le === s)?.count ?? 0) / Math.max(1, total);
const p99 = polls.find((b) => b.count >= total * 0.99)?.le ?? NaN;

reelay.kill('SIGTERM');
sim.kill('SIGTERM');
await agent.close();
await once(reelay, 'exit');
rmSync(dir, { recursive: true, force: true });

console.log('');
console.log(`node ${process.version}, ${TASKS} tasks, simulated generation ${JOB_SECONDS} s, first poll at ${TYPICAL} s, polls at most every ${POLL_MAX} s`);
console.log(`all finished after ${totalSeconds.toFixed(0)} s; ${total} polls`);
console.log(`peak RSS of the Reelay process: ${peakRss.toFixed(0)} MB   goal <= 1024 MB: ${peakRss <= 1024 ? 'met' : 'MISSED'}`);
console.log(`poll lateness: ${(within(0.1) * 100).toFixed(2)} % within 0.1 s, ${(within(1) * 100).toFixed(2)} % within 1 s; p99 <= ${p99} s   goal p99 <= 1 s: ${within(1) >= 0.99 ? 'met' : 'MISSED'}`);
process.exit(0);
