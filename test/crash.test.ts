import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from '../src/store/sqlite/driver.js';
import { binaries, makePng } from './media.js';
import { probe } from '../src/media/probe.js';
import { peer } from './peer.js';
import { type ServerProcess, freePort, sleep, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-crash-test';

/**
 * kill -9 a real server several times while tasks are in every phase (fetching, rendering,
 * upsampling, calling back); restart it each time on the same data. Every accepted task must end
 * terminal, and no completed step may run twice: one upstream submission and at most one completed
 * render per task.
 */
test('crash: kill -9 mid-lifecycle, restart, every task terminal, none rendered twice', { timeout: 240_000 }, async () => {
  const work = tmpDir();
  const img = readFileSync(await makePng(work, 'in.png', 320, 180));
  const host = await peer({
    '/in.png': (_q, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(img),
    '/cb': (_q, res) => res.writeHead(200).end(),
  });
  after(() => host.close());
  const port = await freePort();
  const env = {
    REELAY_DATA_DIR: work,
    REELAY_API_KEYS: KEY,
    REELAY_URL_ALLOWLIST: '127.0.0.1',
    REELAY_LEASE_MS: '1000',
    REELAY_ERROR_SLEEP_MS: '100',
    REELAY_RENDER_CONCURRENCY: '2',
  };
  let srv: ServerProcess = await startServer(env, port);
  after(() => srv.kill9());
  const h = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => (await (await fetch(`${srv.url}${path}`, { method: 'POST', headers: h, body: JSON.stringify(body) })).json()) as any;

  const kieIds: string[] = [];
  const kkIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    kieIds.push((await post('/api/v1/veo/generate', { prompt: `crash text ${i}`, duration: 4, callBackUrl: `${host.url}/cb` })).data.taskId);
    kieIds.push((await post('/api/v1/veo/generate', { prompt: `crash image ${i}`, duration: 4, imageUrls: [`${host.url}/in.png`] })).data.taskId);
    kkIds.push((await post('/v1/video/create', { model: 'veo3.1-fast', prompt: `crash upsample ${i}`, enable_upsample: true })).id);
  }
  const all = [...kieIds, ...kkIds];
  assert.equal(all.length, 9);
  assert.ok(all.every((id) => typeof id === 'string'));

  // Kill at uneven moments so every phase gets hit: right after start, mid-render, mid-upsample.
  const pauses = [150, 900, 2300, 400, 1700, 3100];
  for (const ms of pauses) {
    await sleep(ms);
    await srv.kill9();
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
  }, 180_000, 250);
  assert.deepEqual(Object.values(states), all.map(() => 1), `every task succeeded; failed: ${failures.join('\n')}`);

  // Callbacks: each text task was called back (at least once; redelivery after a crash is allowed).
  await waitFor(async () => (new Set(host.received.filter((r) => r.path === '/cb').map((r) => JSON.parse(r.body).data.taskId)).size === 3 ? true : undefined), 30_000);
  await srv.stop();

  const db = new Database(join(work, 'reelay.sqlite'), { readonly: true });
  for (const id of all) {
    const ups = db.prepare(`SELECT DISTINCT upstream_id FROM attempts WHERE task_id = ? AND outcome = 'submitted'`).all(id);
    assert.equal(ups.length, 1, `${id} submitted once upstream, got ${JSON.stringify(ups)}`);
    const art = db.prepare(`SELECT kind, path FROM artifacts WHERE task_id = ? AND kind LIKE 'video%'`).all(id) as { kind: string; path: string }[];
    for (const a of art) {
      // An artifact's path is its object key: a file under the default results folder.
      const p = await probe(binaries.ffprobe, join(work, 'results', a.path));
      assert.equal(p.video?.codec, 'h264', `${id} ${a.kind} is a complete video`);
    }
  }
  db.close();
  const completions = readFileSync(join(work, 'renders', 'renders.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).taskId as string);
  for (const id of all) {
    assert.ok(completions.filter((t) => t === id).length <= 1, `${id} rendered ${completions.filter((t) => t === id).length} times`);
  }
});
