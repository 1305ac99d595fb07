// HTTP benchmark, one run, one machine: task queries (kie record-info, kkiai query) on existing
// tasks and durable creates, against a bare Fastify hello-world. Each server is its own process.
// The load comes from wrk (Debian's `wrk`, written in C) when it is installed, else from
// autocannon in this process. autocannon parses responses in JavaScript, so with it the load
// generator itself limits the larger task answers and the ratios come out low.
//
//   apt-get install wrk && npm run bench   (10 s per target, 50 connections, 2000 existing tasks)
//   BENCH_SECONDS=20 BENCH_CONNECTIONS=100 BENCH_LOADER=autocannon npm run bench
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { hashKey } from '../src/auth/keys.js';
import { kieTaskId, kkiaiTaskId } from '../src/core/ids.js';
import type { Task } from '../src/core/task.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const TASKS = Number(process.env.BENCH_TASKS ?? 2000);
const KEY = 'sk-bench-key';
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function task(id: string, dialect: Task['dialect'], i: number): Task {
  const now = Date.now();
  return {
    id, tenantId: `t_${hashKey(KEY).slice(0, 16)}`, dialect, model: dialect === 'kie' ? 'veo3_fast' : 'veo3.1-fast',
    spec: { prompt: `bench prompt ${i}`, images: [], mode: 'text', aspectRatio: '16:9', resolution: dialect === 'kie' ? '720p' : '1080p', upsample: dialect !== 'kie', seed: 10000 + i, durationSeconds: 8, enhancePrompt: true },
    request: { prompt: `bench prompt ${i}`, model: dialect === 'kie' ? 'veo3_fast' : 'veo3.1-fast', enable_upsample: dialect !== 'kie' },
    state: 'succeeded', enhancedPrompt: `bench prompt ${i}. Wide establishing shot, golden-hour sunlight, a serene mood, rich textures, smooth natural motion.`,
    images: [], provider: 'local', upstreamId: 'b'.repeat(32), attemptCount: 1, retryCount: 0, maxRetries: 3, errorSleepMs: 5000,
    lastError: null, lastErrorKind: null, failureStage: null, callbackUrl: null, fileToken: `tok${i}${dialect}`, hdState: 'none',
    progress: 100, createdAt: now - 60_000, updatedAt: now, completedAt: now, deadlineAt: now + 1_800_000, nextRunAt: null,
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
function loadWrk(name: string, t: Target): number {
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
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-s', lua, t.base], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(out)?.[1] ?? 0);
  return report(name, rps, p50, p99, bad);
}

async function loadAutocannon(name: string, t: Target): Promise<number> {
  let i = 0;
  const r = await autocannon({
    url: t.base, connections: CONNECTIONS, duration: SECONDS, headers: t.headers,
    requests: [{ method: t.method ?? 'GET', ...(t.body ? { body: t.body } : {}), setupRequest: (req) => ({ ...req, path: t.paths[i++ % t.paths.length]! }) }],
  });
  return report(name, r.requests.average, `${r.latency.p50}ms`, `${r.latency.p99}ms`, r.non2xx + r.errors + r.timeouts);
}

const load = (name: string, t: Target) => (hasWrk ? loadWrk(name, t) : loadAutocannon(name, t));

const dir = mkdtempSync(join(tmpdir(), 'reelay-bench-'));
const store = openSqliteStore(join(dir, 'reelay.sqlite'));
const kieIds: string[] = [];
const kkIds: string[] = [];
for (let i = 0; i < TASKS / 2; i++) {
  const a = task(kieTaskId(), 'kie', i);
  const b = task(kkiaiTaskId('veo3.1-fast', Date.now()), 'kkiai', i);
  await store.createTask(a);
  await store.createTask(b);
  kieIds.push(a.id);
  kkIds.push(b.id);
}
await store.close();

console.log(`node ${process.version}, ${hasWrk ? 'wrk (1 thread)' : 'autocannon'}, ${SECONDS} s per target, ${CONNECTIONS} connections, ${TASKS} existing tasks`);
const hello = await start([here('./hello.js'), '18801'], {}, (o) => o.includes('ready'));
const helloA = await load('fastify hello-world', { base: 'http://127.0.0.1:18801', paths: ['/'] });

const reelay = await start([here('../src/cli.js'), 'serve'], {
  PORT: '18802', REELAY_DATA_DIR: dir, REELAY_API_KEYS: KEY, REELAY_ENGINE: 'off', LOG_LEVEL: 'warn',
}, () => false, 'http://127.0.0.1:18802/healthz');
const headers = { authorization: `Bearer ${KEY}` };
const base = 'http://127.0.0.1:18802';
const kie = await load('kie record-info', { base, headers, paths: kieIds.map((id) => `/api/v1/veo/record-info?taskId=${id}`) });
const kk = await load('kkiai query', { base, headers, paths: kkIds.map((id) => `/v1/video/query?id=${encodeURIComponent(id)}`) });
const creates = await load('kie generate (durable)', {
  base, method: 'POST', paths: ['/api/v1/veo/generate'],
  headers: { ...headers, 'content-type': 'application/json' },
  body: JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', aspect_ratio: '16:9', seeds: 12345 }),
});
const helloB = await load('fastify hello-world (again)', { base: 'http://127.0.0.1:18801', paths: ['/'] });
hello.kill();
reelay.kill();
rmSync(dir, { recursive: true, force: true });

const baseline = (helloA + helloB) / 2;
console.log('');
console.log(`hello-world baseline (mean of both runs): ${baseline.toFixed(0)} req/s`);
console.log(`kie record-info / hello-world:  ${(kie / baseline).toFixed(2)}x  (goal >= 0.75)`);
console.log(`kkiai query / hello-world:      ${(kk / baseline).toFixed(2)}x  (goal >= 0.75)`);
console.log(`durable creates / hello-world:  ${(creates / baseline).toFixed(2)}x  (goal >= 0.25)`);
