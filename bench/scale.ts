// Full lifecycles per second in the three store modes, one after the other in one run (this
// machine's speed swings from hour to hour, so only ratios within a run count): the embedded mode
// (SQLite, one process), PostgreSQL with one process, and PostgreSQL with 1 API process and 2
// engine processes. Each mode is one `bench/lifecycle.ts` run.
//
//   npm run build && node dist/bench/scale.js      (BENCH_TASKS, default 10000; BENCH_WARMUP, default 2000)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LIFECYCLE = fileURLToPath(new URL('./lifecycle.js', import.meta.url));
const modes = [
  { name: 'embedded (SQLite, 1 process)', env: {} },
  { name: 'PostgreSQL, 1 process', env: { BENCH_STORE: 'postgres' } },
  { name: 'PostgreSQL, 1 API + 2 engine processes', env: { BENCH_STORE: 'postgres', BENCH_PROCESSES: 'split' } },
];
const rates: number[] = [];
for (const m of modes) {
  const out = spawnSync(process.execPath, [LIFECYCLE], {
    env: { ...process.env, BENCH_TASKS: process.env.BENCH_TASKS ?? '10000', BENCH_WARMUP: process.env.BENCH_WARMUP ?? '2000', ...m.env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 900_000,
  });
  process.stdout.write(out.stdout);
  const rate = Number(/(\d+) lifecycles\/s/.exec(out.stdout)?.[1] ?? NaN);
  rates.push(rate);
  console.log('');
}
console.log('lifecycles/s by mode, and the ratio to the embedded mode (goal for PostgreSQL: >= 0.5x):');
for (const [i, m] of modes.entries()) console.log(`  ${m.name.padEnd(42)} ${String(rates[i]).padStart(6)}/s  ${(rates[i]! / rates[0]!).toFixed(2)}x`);
