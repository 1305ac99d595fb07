import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { probe } from '../src/media/probe.js';
import { openStore, type StoreSettings } from '../src/store/open.js';
import Database from '../src/store/sqlite/driver.js';
import { binaries, makePng } from './media.js';
import { peer } from './peer.js';
import { freshDatabase, pgSkipReason } from './pg.js';
import { type ServerProcess, freePort, sleep, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-crash-test';

/** A task's lease as the store holds it: its engine and the end of the lease (the store's clock). */
interface Lease {
  id: string;
  owner: string;
  until: number;
}

/** What the test reads from the store while the server runs, besides the API. */
interface Probe {
  /** Where the store is, for the checks at the end (`openStore`). */
  settings: StoreSettings;
  /** What the server is given to use that store. */
  env: Record<string, string>;
  /** Every task that is leased now, and the time now on the clock the leases are on. */
  leases(): Promise<{ now: number; leases: Lease[] }>;
  /** The migrations applied (with when, where the store records it): none before the first start. */
  schema(): Promise<string[]>;
  close(): Promise<void>;
}

interface Backend {
  name: string;
  skip: string | false;
  /** Tasks of each of the three kinds (text with a callback, image, upsample). */
  perKind: number;
  leaseMs: number;
  open(work: string): Promise<Probe>;
}

const LEASES = 'SELECT id, lease_owner AS owner, lease_until AS until FROM tasks WHERE lease_owner IS NOT NULL';
/** How soon after its lease's end a task the killed process held must be taken (claims come every 250 ms; a busy machine is slow). */
const TAKE_OVER_MS = 15_000;

const backends: Backend[] = [
  {
    name: 'SQLite',
    skip: false,
    perKind: 3,
    leaseMs: 1000,
    async open(work) {
      const settings = { dataDir: work };
      let db: InstanceType<typeof Database> | undefined;
      // Opened read-only once the server made the file; WAL lets it read while the server writes.
      const read = () => (db ??= new Database(join(work, 'reelay.sqlite'), { readonly: true }));
      return {
        settings,
        env: {},
        // The server's own clock, read after the rows (a claim they show came before): the leases are on it.
        async leases() {
          const leases = read().prepare(LEASES).all() as Lease[];
          return { now: Date.now(), leases };
        },
        schema: async () => Array.from({ length: read().pragma('user_version', { simple: true }) as number }, (_, i) => `${i + 1}`),
        close: async () => void db?.close(),
      };
    },
  },
  {
    name: 'PostgreSQL',
    skip: pgSkipReason(),
    // The same phases, kills and checks with a third of the tasks: the renders make most of this
    // test's time, and the file's stays within the suite's budget.
    perKind: 1,
    // Longer than a restart takes, so the new process finds the dead one's leases still running
    // and must wait for their end, as the database's clock tells it.
    leaseMs: 3000,
    async open(work) {
      const url = (await freshDatabase())!;
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      return {
        settings: { dataDir: work, databaseUrl: url },
        env: { REELAY_DATABASE_URL: url },
        // The database's clock, read in the same statement (after the rows: a claim it sees came before).
        async leases() {
          const { rows } = await client.query(`SELECT coalesce(json_agg(l), '[]') AS leases, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now FROM (${LEASES}) l`);
          return { now: Number(rows[0].now), leases: rows[0].leases as Lease[] };
        },
        schema: async () => (await client.query('SELECT version, applied_at FROM reelay_migrations ORDER BY version')).rows.map((r) => `${r.version} at ${r.applied_at}`),
        close: () => client.end(),
      };
    },
  },
];

/**
 * kill -9 a real server several times while tasks are in every phase (fetching, rendering,
 * upsampling, calling back); restart it each time on the same data. Every accepted task must end
 * terminal, and no completed step may run twice: one upstream submission and at most one completed
 * render per task. A task the killed process held is taken by the restarted one only once its lease
 * has ended, and the restarted process finds the schema applied and applies nothing again.
 */
for (const backend of backends) {
  test(`crash (${backend.name}): kill -9 mid-lifecycle, restart, every task terminal, none rendered twice`, { skip: backend.skip, timeout: 300_000 }, async (t) => {
    const work = tmpDir();
    const img = readFileSync(await makePng(work, 'in.png', 320, 180));
    const host = await peer({
      '/in.png': (_q, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(img),
      '/cb': (_q, res) => res.writeHead(200).end(),
    });
    t.after(() => host.close());
    const store = await backend.open(work);
    t.after(() => store.close());
    const port = await freePort();
    const env = {
      ...store.env,
      REELAY_DATA_DIR: work,
      REELAY_API_KEYS: KEY,
      REELAY_URL_ALLOWLIST: '127.0.0.1',
      REELAY_LEASE_MS: String(backend.leaseMs),
      REELAY_ERROR_SLEEP_MS: '100',
      REELAY_RENDER_CONCURRENCY: '2',
    };
    let srv: ServerProcess = await startServer(env, port);
    t.after(() => srv.kill9());
    const schema = await store.schema();
    assert.ok(schema.length > 0, 'the first start migrated');
    const h = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const post = async (path: string, body: unknown) => (await (await fetch(`${srv.url}${path}`, { method: 'POST', headers: h, body: JSON.stringify(body) })).json()) as any;

    const kieIds: string[] = [];
    const kkIds: string[] = [];
    for (let i = 0; i < backend.perKind; i++) {
      kieIds.push((await post('/api/v1/veo/generate', { prompt: `crash text ${i}`, duration: 4, callBackUrl: `${host.url}/cb` })).data.taskId);
      kieIds.push((await post('/api/v1/veo/generate', { prompt: `crash image ${i}`, duration: 4, imageUrls: [`${host.url}/in.png`] })).data.taskId);
      kkIds.push((await post('/v1/video/create', { model: 'veo3.1-fast', prompt: `crash upsample ${i}`, enable_upsample: true })).id);
    }
    const all = [...kieIds, ...kkIds];
    assert.equal(all.length, 3 * backend.perKind);
    assert.ok(all.every((id) => typeof id === 'string'));

    // The leases a killed process left behind, and when each task was first seen held by another
    // engine: never while the dead one's lease ran, and soon after it ended.
    const orphaned = new Map<string, Lease>();
    const takenOver: { id: string; ended: number; seen: number }[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const { now, leases } = await store.leases();
        for (const l of leases) {
          const old = orphaned.get(l.id);
          if (!old || old.owner === l.owner) continue;
          takenOver.push({ id: l.id, ended: old.until, seen: now });
          orphaned.delete(l.id);
        }
        await sleep(50);
      }
    })();
    watch.catch(() => undefined); // awaited below; a test that fails before must not leave it unhandled
    t.after(() => void (watching = false));

    // Kill at uneven moments so every phase gets hit: right after start, mid-render, mid-upsample.
    const pauses = [150, 900, 2300, 400, 1700, 3100];
    for (const ms of pauses) {
      await sleep(ms);
      await srv.kill9();
      orphaned.clear();
      for (const l of (await store.leases()).leases) orphaned.set(l.id, l);
      srv = await startServer(env, port);
    }

    const failures: string[] = [];
    const states = await waitFor(async () => {
      failures.length = 0;
      const out: Record<string, number> = {};
      for (const id of kieIds) {
        const r = (await (await fetch(`${srv.url}/api/v1/veo/record-info?taskId=${id}`, { headers: h })).json()) as any;
        if (r.data.successFlag === 0) return undefined;
        out[id] = r.data.successFlag;
      }
      for (const id of kkIds) {
        const r = (await (await fetch(`${srv.url}/v1/video/query?id=${encodeURIComponent(id)}`, { headers: h })).json()) as any;
        if (r.detail.running) return undefined;
        out[id] = r.status === 'completed' ? 1 : 3;
        if (r.status !== 'completed') failures.push(JSON.stringify(r));
      }
      return out;
    }, 200_000, 250);
    assert.deepEqual(Object.values(states), all.map(() => 1), `every task succeeded; failed: ${failures.join('\n')}`);
    watching = false;
    await watch;

    assert.ok(takenOver.length > 0, 'a restarted process took over tasks the killed one held');
    for (const o of takenOver) {
      assert.ok(o.seen >= o.ended, `${o.id} taken over ${o.ended - o.seen} ms before the killed process's lease ended`);
      assert.ok(o.seen - o.ended < TAKE_OVER_MS, `${o.id} taken over ${o.seen - o.ended} ms after the killed process's lease ended`);
    }
    assert.deepEqual(await store.schema(), schema, 'the restarts found the schema applied and applied nothing again');

    // Callbacks: each text task was called back (at least once; redelivery after a crash is allowed).
    const called = async () => new Set(host.received.filter((r) => r.path === '/cb').map((r) => JSON.parse(r.body).data.taskId)).size;
    await waitFor(async () => ((await called()) === backend.perKind ? true : undefined), 30_000);
    await srv.stop();

    const db = await openStore(store.settings);
    try {
      for (const id of all) {
        const ups = new Set((await db.listAttempts(id)).filter((a) => a.outcome === 'submitted').map((a) => a.upstreamId));
        assert.equal(ups.size, 1, `${id} submitted once upstream, got ${JSON.stringify([...ups])}`);
        for (const a of (await db.listArtifacts(id)).filter((x) => x.kind.startsWith('video'))) {
          // An artifact's path is its object key: a file under the default results folder.
          const p = await probe(binaries.ffprobe, join(work, 'results', a.path));
          assert.equal(p.video?.codec, 'h264', `${id} ${a.kind} is a complete video`);
        }
      }
    } finally {
      await db.close();
    }
    const completions = readFileSync(join(work, 'renders', 'renders.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).taskId as string);
    for (const id of all) {
      assert.ok(completions.filter((c) => c === id).length <= 1, `${id} rendered ${completions.filter((c) => c === id).length} times`);
    }
  });
}
