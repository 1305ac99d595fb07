// HTTP benchmark, one run, one machine: task queries (kie record-info, kkiai query) on existing
// tasks and durable creates, against a bare Fastify hello-world. Each server is its own process;
// autocannon loads it from this process over loopback.
//
//   npm run bench              (defaults: 10 s per target, 50 connections, 2000 existing tasks)
//   BENCH_SECONDS=20 BENCH_CONNECTIONS=100 npm run bench
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

async function load(name: string, opts: autocannon.Options): Promise<number> {
  const r = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...opts });
  const bad = r.non2xx + r.errors + r.timeouts;
  console.log(`${name.padEnd(28)} ${r.requests.average.toFixed(0).padStart(8)} req/s   p50 ${r.latency.p50} ms   p99 ${r.latency.p99} ms${bad ? `   NON-2XX/ERRORS ${bad}` : ''}`);
  if (bad) throw new Error(`${name}: ${bad} failed requests`);
  return r.requests.average;
}

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

console.log(`node ${process.version}, ${SECONDS} s per target, ${CONNECTIONS} connections, ${TASKS} existing tasks`);
const hello = await start([here('./hello.js'), '18801'], {}, (o) => o.includes('ready'));
const helloA = await load('fastify hello-world', { url: 'http://127.0.0.1:18801/' });

const reelay = await start([here('../src/cli.js'), 'serve'], {
  PORT: '18802', REELAY_DATA_DIR: dir, REELAY_API_KEYS: KEY, REELAY_ENGINE: 'off', LOG_LEVEL: 'warn',
}, () => false, 'http://127.0.0.1:18802/healthz');
const headers = { authorization: `Bearer ${KEY}` };
let i = 0;
const kie = await load('kie record-info', {
  url: 'http://127.0.0.1:18802', headers,
  requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/api/v1/veo/record-info?taskId=${kieIds[i++ % kieIds.length]}` }) }],
});
let j = 0;
const kk = await load('kkiai query', {
  url: 'http://127.0.0.1:18802', headers,
  requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/v1/video/query?id=${encodeURIComponent(kkIds[j++ % kkIds.length]!)}` }) }],
});
const creates = await load('kie generate (durable)', {
  url: 'http://127.0.0.1:18802/api/v1/veo/generate', method: 'POST',
  headers: { ...headers, 'content-type': 'application/json' },
  body: JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', aspect_ratio: '16:9', seeds: 12345 }),
});
const helloB = await load('fastify hello-world (again)', { url: 'http://127.0.0.1:18801/' });
hello.kill();
reelay.kill();
rmSync(dir, { recursive: true, force: true });

const base = (helloA + helloB) / 2;
console.log('');
console.log(`hello-world baseline (mean of both runs): ${base.toFixed(0)} req/s`);
console.log(`kie record-info / hello-world:  ${(kie / base).toFixed(2)}x  (goal >= 0.75)`);
console.log(`kkiai query / hello-world:      ${(kk / base).toFixed(2)}x  (goal >= 0.75)`);
console.log(`durable creates / hello-world:  ${(creates / base).toFixed(2)}x  (goal >= 0.25)`);
