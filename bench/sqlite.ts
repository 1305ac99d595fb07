// The two SQLite drivers side by side on one runtime: better-sqlite3 13 (Node-API) and 12 (V8 API),
// the calls Reelay's store makes most (a point read by key, an insert in a group commit of 50,
// an update by key) and a 33-column insert like the task insert, with named parameters and with
// the same values in an array, in alternating rounds on one file each.
// Usage: node dist/bench/sqlite.js   (BENCH_ROWS, BENCH_ROUNDS, BENCH_DATA_ROOT)
// Node-API 10 is needed for 13. Run it on a runtime where 12 is safe too: Node 24.22 or later, or 22.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
const ROWS = Number(process.env.BENCH_ROWS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

if (Number(process.versions.napi) < 10) {
  console.log(`node ${process.version} has Node-API ${process.versions.napi}: better-sqlite3 13 cannot load here`);
  process.exit(0);
}
const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
if (major === 24 && minor >= 19 && minor <= 21) {
  console.log(`node ${process.version}: better-sqlite3 12 may abort on this runtime; use 24.22 or later, or 22`);
  process.exit(0);
}

const drivers: Record<string, typeof BetterSqlite3> = {
  '13 (Node-API)': require('better-sqlite3'),
  '12 (V8 API)': require('better-sqlite3-12'),
};
const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-sqlite-bench-'));

interface Figures {
  read: number;
  insert: number;
  update: number;
  wideNamed: number;
  wideArray: number;
}
const KINDS = ['read', 'insert', 'update', 'wideNamed', 'wideArray'] as const;
const WIDE = Array.from({ length: 33 }, (_, i) => `c${i}`);

function round(name: string, Sqlite: typeof BetterSqlite3, n: number): Figures {
  const file = join(dir, `${name.split(' ')[0]}-${n}.sqlite`);
  const db = new Sqlite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE tasks (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO tasks (id, tenant_id, state, version, body) VALUES (?, ?, ?, 0, ?)');
  const byId = db.prepare('SELECT * FROM tasks WHERE id = ? AND tenant_id = ?');
  const update = db.prepare('UPDATE tasks SET state = ?, version = version + 1 WHERE id = ?');
  const ids = Array.from({ length: ROWS }, (_, i) => `${(1_700_000_000_000 + i).toString(16)}${i.toString(16).padStart(20, '0')}`);
  const body = JSON.stringify({ prompt: 'A lighthouse on a cliff at dusk', model: 'veo3_fast', aspect_ratio: '16:9' });
  const group = db.transaction((from: number) => {
    for (let i = from; i < Math.min(from + 50, ROWS); i++) insert.run(ids[i], 't1', 'queued', body);
  });
  let t = process.hrtime.bigint();
  for (let i = 0; i < ROWS; i += 50) group(i);
  const insertNs = Number(process.hrtime.bigint() - t) / ROWS;
  t = process.hrtime.bigint();
  let found = 0;
  for (let i = 0; i < ROWS; i++) if (byId.get(ids[(i * 7919) % ROWS], 't1')) found++;
  const readNs = Number(process.hrtime.bigint() - t) / ROWS;
  if (found !== ROWS) throw new Error(`read ${found} of ${ROWS}`);
  const updates = db.transaction((from: number) => {
    for (let i = from; i < Math.min(from + 50, ROWS); i++) update.run('running', ids[i]);
  });
  t = process.hrtime.bigint();
  for (let i = 0; i < ROWS; i += 50) updates(i);
  const updateNs = Number(process.hrtime.bigint() - t) / ROWS;
  db.exec(`CREATE TABLE wide (${WIDE.join(', ')})`);
  const named = db.prepare(`INSERT INTO wide VALUES (${WIDE.map((c) => `@${c}`).join(', ')})`);
  const positional = db.prepare(`INSERT INTO wide VALUES (${WIDE.map(() => '?').join(', ')})`);
  const wideRow = (i: number) => Object.fromEntries(WIDE.map((c, j) => [c, j % 3 ? i : `value ${j}`]));
  const wide = (fn: (i: number) => void) => {
    const batch = db.transaction((from: number) => {
      for (let i = from; i < Math.min(from + 50, ROWS); i++) fn(i);
    });
    const start = process.hrtime.bigint();
    for (let i = 0; i < ROWS; i += 50) batch(i);
    return Number(process.hrtime.bigint() - start) / ROWS;
  };
  const wideNamedNs = wide((i) => named.run(wideRow(i)));
  const wideArrayNs = wide((i) => {
    const row = wideRow(i);
    positional.run(WIDE.map((c) => row[c]));
  });
  db.close();
  rmSync(file, { force: true });
  rmSync(`${file}-wal`, { force: true });
  rmSync(`${file}-shm`, { force: true });
  const us = (ns: number) => ns / 1000;
  return { read: us(readNs), insert: us(insertNs), update: us(updateNs), wideNamed: us(wideNamedNs), wideArray: us(wideArrayNs) };
}

function line(f: Figures): string {
  return `read ${f.read.toFixed(2)}  insert ${f.insert.toFixed(2)}  update ${f.update.toFixed(2)}  wide ${f.wideNamed.toFixed(2)} / ${f.wideArray.toFixed(2)}`;
}

const results: Record<string, Figures[]> = {};
console.log(`node ${process.version}, ${ROWS} rows, ${ROUNDS} rounds alternating; µs per call`);
for (const [name, Sqlite] of Object.entries(drivers)) round(name, Sqlite, -1); // warm-up, not measured
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, Sqlite] of r % 2 ? Object.entries(drivers).reverse() : Object.entries(drivers)) {
    const f = round(name, Sqlite, r);
    (results[name] ??= []).push(f);
    console.log(`round ${r + 1}  ${name.padEnd(14)} ${line(f)}`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('\nmedians, µs per call (wide: the 33-column insert, named parameters / an array)');
for (const [name, fs] of Object.entries(results)) {
  const m = Object.fromEntries(KINDS.map((k) => [k, median(fs.map((f) => f[k]))])) as unknown as Figures;
  console.log(`${name.padEnd(14)} ${line(m)}`);
}
const [a, b] = Object.values(results) as [Figures[], Figures[]];
for (const k of KINDS) {
  const ratios = a.map((f, i) => f[k] / b[i]![k]);
  console.log(`13 / 12 ${k.padEnd(9)} median ${median(ratios).toFixed(2)}  (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
}
rmSync(dir, { recursive: true, force: true });
