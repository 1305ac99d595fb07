// Full lifecycles per second, embedded mode, against the upstream simulator.
//
// One lifecycle: a client creates a task (kie `POST /api/v1/veo/generate` with a callBackUrl,
// committed to SQLite before the answer); the engine submits it to the simulated kie upstream,
// polls it (the simulator completes jobs at once), downloads the result (a 1 s, ~20 kB MP4),
// probes it, commits the success with its callback in the outbox; the deliverer POSTs the callback
// to a receiver in this process. The figure counts callbacks received per second.
//
// Three processes share the 2 cores: Reelay, the simulator and this one (load and receiver).
//
//   npm run build && node dist/bench/lifecycle.js      (BENCH_TASKS=20000, BENCH_INFLIGHT=400)
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { freePort } from '../test/server.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 20_000);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 400);
const KEY = 'sk-bench-lifecycle';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
// BENCH_PROF=dir writes a CPU profile of Reelay and of the simulator there.
const profFlags = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-lifecycle-'));

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
    if (t0 !== undefined) latencies.push(performance.now() - t0);
    room.shift()?.();
    if (++callbacks === TASKS) allDone();
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
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const reelay = spawn(process.execPath, [...profFlags, CLI, 'serve'], {
  env: {
    ...process.env, PORT: String(port), REELAY_DATA_DIR: join(dir, 'data'), REELAY_API_KEYS: KEY, REELAY_CONFIG: join(dir, 'reelay.json'),
    SIM_KEY: 'sk-sim', REELAY_URL_ALLOWLIST: '127.0.0.1', LOG_LEVEL: 'warn', REELAY_ENGINE_CONCURRENCY: process.env.REELAY_ENGINE_CONCURRENCY ?? '256', REELAY_ENGINE_DOWNLOADS: process.env.REELAY_ENGINE_DOWNLOADS ?? '64',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
for (;;) {
  const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
  if (ok) break;
  await new Promise((r) => setTimeout(r, 50));
}

// --- the load: TASKS creates, at most INFLIGHT lifecycles open at once ---
const agent = new Agent({ connections: 64, pipelining: 1 });
const body = JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', callBackUrl: callbackUrl });
let sent = 0;
let createErrors = 0;
const started = performance.now();
async function worker(): Promise<void> {
  while (sent < TASKS) {
    // Keep at most INFLIGHT lifecycles open: wait while too many are between create and callback.
    while (sent - callbacks >= INFLIGHT) await new Promise<void>((r) => room.push(r));
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
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
// CPU seconds each process spent (user + system), from /proc: where the two cores went.
const cpuOf = (pid: number | undefined) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
  } catch { return { user: NaN, sys: NaN }; }
};
const own = process.cpuUsage();
const cpu = { reelay: cpuOf(reelay.pid), sim: cpuOf(sim.pid), load: { user: own.user / 1e6, sys: own.system / 1e6 } };
const fmt = (c: { user: number; sys: number }) => `${(c.user + c.sys).toFixed(1)} (${c.sys.toFixed(1)} in the kernel)`;
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(0);

reelay.kill('SIGTERM');
sim.kill('SIGTERM');
receiver.close();
await agent.close();
await Promise.all([once(reelay, "exit"), once(sim, "exit")]);
rmSync(dir, { recursive: true, force: true });

console.log(`node ${process.version}, ${TASKS} lifecycles, at most ${INFLIGHT} open at once, engine concurrency ${process.env.REELAY_ENGINE_CONCURRENCY ?? '256'}, downloads ${process.env.REELAY_ENGINE_DOWNLOADS ?? '64'}`);
console.log(`lifecycle = create (durable) + submit + poll + download and probe + finalize + callback delivered`);
console.log(`${(TASKS / seconds).toFixed(0)} lifecycles/s  (${seconds.toFixed(1)} s)   create→callback p50 ${pct(50)} ms  p99 ${pct(99)} ms`);
console.log(`CPU seconds: reelay ${fmt(cpu.reelay)}, simulator ${fmt(cpu.sim)}, load and receiver ${fmt(cpu.load)} (the run had ${(2 * seconds).toFixed(1)} core-seconds)`);
console.log(`failed creates ${createErrors}, failure callbacks ${failedCallbacks}, repeated callbacks ${duplicates}   goal >= 2000/s: ${TASKS / seconds >= 2000 ? 'met' : 'MISSED'}`);
process.exit(0);
