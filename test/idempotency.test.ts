import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import pg from 'pg';
import BetterSqlite3 from '../src/store/sqlite/driver.js';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-idempotency-e2e';

/** Where the server keeps its tasks, and how the test reads the submissions it recorded. */
const backends = SERVER_BACKENDS;

for (const backend of backends) {
  describe(`idempotent create against a real server (${backend.name})`, { skip: backend.skip }, () => {
    let srv: ServerProcess;
    let work: string;
    let env: Record<string, string>;

    before(async () => {
      work = tmpDir();
      env = await backend.env();
      srv = await startServer({ ...env, REELAY_DATA_DIR: work, REELAY_API_KEYS: KEY, REELAY_RENDER_CONCURRENCY: '2' });
    });
    after(async () => {
      await srv?.stop();
    });

    /** The submit attempts the server recorded for a task, read from its store. */
    async function submissions(taskId: string): Promise<number> {
      const sql = `SELECT count(*) AS n FROM attempts WHERE task_id = $1 AND step = 'submit' AND outcome = 'submitted'`;
      if (env.REELAY_DATABASE_URL) {
        const client = new pg.Client({ connectionString: env.REELAY_DATABASE_URL });
        await client.connect();
        try {
          return Number((await client.query(sql, [taskId])).rows[0].n);
        } finally {
          await client.end();
        }
      }
      const db = new BetterSqlite3(join(work, 'reelay.sqlite'), { readonly: true });
      try {
        return (db.prepare(sql.replace('$1', '?')).get(taskId) as { n: number }).n;
      } finally {
        db.close();
      }
    }

    test('50 identical kie creates at once with one key: one task, one submission; every answer the first or a 409 to retry', async () => {
      const body = JSON.stringify({ prompt: 'a lighthouse at dusk, fifty times', seeds: 12345 });
      const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'idempotency-key': 'race-1' };
      const send = () => fetch(`${srv.url}/api/v1/veo/generate`, { method: 'POST', headers, body });
      const answers = await Promise.all(Array.from({ length: 50 }, async () => {
        const res = await send();
        return { status: res.status, replayed: res.headers.get('idempotent-replayed'), retryAfter: res.headers.get('retry-after'), text: await res.text() };
      }));
      const fresh = answers.filter((a) => a.status === 200 && a.replayed === null);
      assert.equal(fresh.length, 1, JSON.stringify(answers.map((a) => [a.status, a.replayed])));
      const first = fresh[0]!.text;
      const taskId = JSON.parse(first).data.taskId as string;
      for (const a of answers) {
        if (a.status === 409) {
          assert.equal(a.retryAfter, '1');
          assert.equal(JSON.parse(a.text).code, 409);
        } else {
          assert.equal(a.status, 200);
          assert.equal(a.text, first, 'a replay is the first answer, byte for byte');
        }
      }
      // The ones told to retry get the first answer when they do.
      for (let n = answers.filter((x) => x.status === 409).length; n > 0; n--) {
        const res = await send();
        assert.equal(res.headers.get('idempotent-replayed'), 'true');
        assert.equal(await res.text(), first);
      }
      // One task in the tenant's list (every door's tasks), and it succeeds having been submitted once.
      const list = await (await fetch(`${srv.url}/v1/videos?limit=100`, { headers })).json() as { data: { id: string }[] };
      assert.deepEqual(list.data.map((v) => v.id), [taskId]);
      await waitFor(async () => {
        const rec = await (await fetch(`${srv.url}/api/v1/veo/record-info?taskId=${taskId}`, { headers })).json() as { data: { successFlag: number } };
        return rec.data.successFlag === 1 ? true : undefined;
      }, 180_000, 200);
      assert.equal(await submissions(taskId), 1);
    });

    test('the openai SDK: a create repeated with its Idempotency-Key, and five at once, give one video', async () => {
      const client = new OpenAI({ apiKey: KEY, baseURL: `${srv.url}/v1` });
      const opts = { headers: { 'Idempotency-Key': 'sdk-1' } };
      const a = await client.videos.create({ prompt: 'a harbour at dawn', seconds: '4' }, opts);
      const b = await client.videos.create({ prompt: 'a harbour at dawn', seconds: '4' }, opts);
      assert.equal(b.id, a.id);
      assert.deepEqual(b, a, 'the first answer, as it was');
      // At once: those that find the first still running get a 409 with x-should-retry, and the
      // SDK's own retry (after Retry-After: 1 s) gets the answer.
      const at = { headers: { 'Idempotency-Key': 'sdk-2' } };
      const five = await Promise.all(Array.from({ length: 5 }, () => client.videos.create({ prompt: 'five at once', seconds: '4' }, at)));
      assert.equal(new Set(five.map((v) => v.id)).size, 1, JSON.stringify(five.map((v) => v.id)));
      // Another request with a key already used: the SDK's UnprocessableEntityError, not retried.
      await assert.rejects(client.videos.create({ prompt: 'something else', seconds: '4' }, opts), (e: unknown) => e instanceof OpenAI.UnprocessableEntityError);
    });
  });
}
