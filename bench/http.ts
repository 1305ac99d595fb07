// HTTP benchmark, one run, one machine: task queries (kie record-info, kkiai query, OpenAI
// retrieve, Gemini operation poll) on existing tasks and durable creates, against a bare Fastify hello-world. Each server is its own process.
// The load comes from wrk (Debian's `wrk`, written in C) when it is installed, else from
// autocannon in this process. autocannon parses responses in JavaScript, so with it the load
// generator itself limits the larger task answers and the ratios come out low.
//
// Each target first runs unmeasured for BENCH_WARMUP_SECONDS (2 s), so the JIT has compiled
// each server's hot path before its figure is taken. Then BENCH_ROUNDS (3) rounds of every target
// alternate with the hello-world; each ratio is reported per round and as the median of rounds.
//
//   apt-get install wrk && npm run bench   (5 s per target and round, 50 connections, 2000 tasks)
//   BENCH_SECONDS=10 BENCH_ROUNDS=5 BENCH_CONNECTIONS=100 BENCH_LOADER=autocannon npm run bench
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { hashKey } from '../src/auth/keys.js';
import { kieTaskId } from '../src/dialects/kie/ids.js';
import { kkiaiTaskId } from '../src/dialects/kkiai/ids.js';
import { geminiTaskId } from '../src/dialects/gemini/ids.js';
import { videoId } from '../src/dialects/openai/ids.js';
import type { Task } from '../src/core/task.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const TASKS = Number(process.env.BENCH_TASKS ?? 2000);
const KEY = 'sk-bench-key';
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

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
    routeIndex: 0, submittedAt: now - 30_000, fallback: false, resultUrl: null,
  };
}

/** Starts a server process; ready when its output passes `ready`, or when `health` answers 200. */
async function start(cmd: string[], env: Record<string, string>, ready: (out: string) => boolean, health?: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, cmd, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
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

interface Target {
  base: string;
  paths: string[];
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

const hasWrk = process.env.BENCH_LOADER !== 'autocannon' && spawnSync('wrk', ['--version']).error === undefined;

function report(name: string, rps: number, p50: string, p99: string, bad: number): number {
  console.log(`${name.padEnd(28)} ${rps.toFixed(0).padStart(8)} req/s   p50 ${p50}   p99 ${p99}${bad ? `   NON-2XX/ERRORS ${bad}` : ''}`);
  if (bad) throw new Error(`${name}: ${bad} failed requests`);
  return rps;
}

/** wrk with a Lua script that walks the paths round-robin. */
function loadWrk(name: string, t: Target, warm: boolean): number {
  const lua = join(dir, 'bench.lua');
  const q = (v: string) => JSON.stringify(v);
  writeFileSync(lua, [
    `local paths = {${t.paths.map(q).join(',')}}`,
    'local i = 0',
    `wrk.method = ${q(t.method ?? 'GET')}`,
    ...Object.entries(t.headers ?? {}).map(([k, v]) => `wrk.headers[${q(k)}] = ${q(v)}`),
    ...(t.body ? [`wrk.body = ${q(t.body)}`] : []),
    'request = function() i = i + 1; return wrk.format(nil, paths[(i % #paths) + 1]) end',
  ].join('\n'));
  const wrk = (seconds: number) => execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', lua, t.base], { encoding: 'utf8' });
  if (warm && WARMUP > 0) wrk(WARMUP);
  const out = wrk(SECONDS);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(out)?.[1] ?? 0);
  return report(name, rps, p50, p99, bad);
}

async function loadAutocannon(name: string, t: Target, warm: boolean): Promise<number> {
  let i = 0;
  const run = (duration: number) => autocannon({
    url: t.base, connections: CONNECTIONS, duration, headers: t.headers,
    requests: [{ method: t.method ?? 'GET', ...(t.body ? { body: t.body } : {}), setupRequest: (req) => ({ ...req, path: t.paths[i++ % t.paths.length]! }) }],
  });
  if (warm && WARMUP > 0) await run(WARMUP);
  const r = await run(SECONDS);
  return report(name, r.requests.average, `${r.latency.p50}ms`, `${r.latency.p99}ms`, r.non2xx + r.errors + r.timeouts);
}

/** Loads one target and returns its req/s; `warm` first runs it unmeasured (see WARMUP). */
const load = async (name: string, t: Target, warm: boolean) => (hasWrk ? loadWrk(name, t, warm) : loadAutocannon(name, t, warm));

const dir = mkdtempSync(join(tmpdir(), 'reelay-bench-'));
const store = openSqliteStore(join(dir, 'reelay.sqlite'));
const kieIds: string[] = [];
const kkIds: string[] = [];
const openaiIds: string[] = [];
const geminiIds: string[] = [];
for (let i = 0; i < TASKS / 4; i++) {
  for (const [dialect, id, ids] of [
    ['kie', kieTaskId(), kieIds],
    ['kkiai', kkiaiTaskId('veo3.1-fast', Date.now()), kkIds],
    ['openai', videoId(), openaiIds],
    ['gemini', geminiTaskId(), geminiIds],
  ] as const) {
    await store.createTask(task(id, dialect, i));
    ids.push(id);
  }
}
await store.close();

console.log(`node ${process.version}, ${hasWrk ? 'wrk (1 thread)' : 'autocannon'}, ${ROUNDS} rounds of ${SECONDS} s per target, ${CONNECTIONS} connections, ${TASKS} existing tasks`);
const hello = await start([here('./hello.js'), '18801'], {}, (o) => o.includes('ready'));
const reelay = await start([here('../src/cli.js'), 'serve'], {
  PORT: '18802', REELAY_DATA_DIR: dir, REELAY_API_KEYS: KEY, REELAY_ENGINE: 'off', LOG_LEVEL: 'warn',
}, () => false, 'http://127.0.0.1:18802/healthz');
const headers = { authorization: `Bearer ${KEY}` };
const base = 'http://127.0.0.1:18802';
const helloWorld: Target = { base: 'http://127.0.0.1:18801', paths: ['/'] };
const targets: [name: string, goal: number, target: Target][] = [
  ['kie record-info', 0.75, { base, headers, paths: kieIds.map((id) => `/api/v1/veo/record-info?taskId=${id}`) }],
  ['kkiai query', 0.75, { base, headers, paths: kkIds.map((id) => `/v1/video/query?id=${encodeURIComponent(id)}`) }],
  ['openai retrieve', 0.75, { base, headers, paths: openaiIds.map((id) => `/v1/videos/${id}`) }],
  ['gemini operation poll', 0.75, {
    base, headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
    paths: geminiIds.map((id) => `/v1beta/models/${MODELS.gemini}/operations/${id}`),
  }],
  ['kie generate (durable)', 0.25, {
    base, method: 'POST', paths: ['/api/v1/veo/generate'],
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', aspect_ratio: '16:9', seeds: 12345 }),
  }],
];

// Rounds: hello, each target, hello, each target, …, hello. A target's ratio in a round is taken
// against the mean of the hello-world runs just before and just after it, so a slow spell of the
// shared machine weighs on both sides of the ratio.
const hellos = [await load('fastify hello-world', helloWorld, true)];
const figures = targets.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (const [i, [name, , t]] of targets.entries()) figures[i]!.push(await load(name, t, r === 0));
  hellos.push(await load('fastify hello-world', helloWorld, false));
}
hello.kill();
reelay.kill();
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('');
console.log(`hello-world: ${hellos.map((h) => h.toFixed(0)).join(', ')} req/s`);
for (const [i, [name, goal]] of targets.entries()) {
  const ratios = figures[i]!.map((rps, r) => rps / ((hellos[r]! + hellos[r + 1]!) / 2));
  const verdict = median(ratios) >= goal ? 'met' : 'MISSED';
  console.log(`${`${name} / hello-world:`.padEnd(40)} median ${median(ratios).toFixed(2)}x  (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')})  goal >= ${goal}: ${verdict}`);
}
