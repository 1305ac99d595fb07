import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY_A = 'sk-limits-e2e-key-a';
const KEY_B = 'sk-limits-e2e-key-b';
const ENDED = new Set(['succeeded', 'failed', 'canceled', 'expired']);

for (const backend of SERVER_BACKENDS) {
  describe(`per-key limits against a real server (${backend.name})`, { skip: backend.skip }, () => {
    let srv: ServerProcess;
    const api = async (key: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${srv.url}/reelay/v1${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, headers: res.headers, body: (await res.json()) as any };
    };

    before(async () => {
      // Renders take at least 1.5 s and four may run at once: the key's limit, not the renderer, queues.
      srv = await startServer({
        ...(await backend.env()),
        REELAY_DATA_DIR: tmpDir(),
        REELAY_API_KEYS: `${KEY_A},${KEY_B}`,
        REELAY_KEY_MAX_IN_FLIGHT: '1',
        REELAY_KEY_CREATES_PER_MINUTE: '6',
        REELAY_RENDER_DELAY_MS: '1500',
        REELAY_RENDER_CONCURRENCY: '4',
      });
    });
    after(async () => {
      await srv?.stop();
    });

    test('REELAY_KEY_MAX_IN_FLIGHT=1: a key\'s tasks are all accepted, and worked on one at a time, oldest first; another key does not wait', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await api(KEY_A, 'POST', '/tasks', { model: 'veo3.1-fast', prompt: `one at a time ${i}`, seconds: 4 });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        ids.push(r.body.id);
      }
      const other = (await api(KEY_B, 'POST', '/tasks', { model: 'veo3.1-fast', prompt: 'not behind key A', seconds: 4 })).body.id as string;
      // Watch key A's tasks until all have ended: never two under way at once.
      let most = 0;
      let otherStarted = false;
      await waitFor(async () => {
        const tasks = (await api(KEY_A, 'GET', '/tasks?limit=10')).body.data as { id: string; state: string }[];
        const underWay = tasks.filter((t) => t.state !== 'queued' && !ENDED.has(t.state)).length;
        most = Math.max(most, underWay);
        if (underWay === 1 && tasks.some((t) => t.state === 'queued')) otherStarted ||= (await api(KEY_B, 'GET', `/tasks/${other}`)).body.state !== 'queued';
        return tasks.every((t) => t.state === 'succeeded') ? true : undefined;
      }, 90_000, 100);
      assert.equal(most, 1, 'one task of the key under way at a time');
      assert.ok(otherStarted, "key B's task started while key A's waited");
      // Oldest first: each started after the one before it had ended.
      const startOf = async (id: string) => {
        const events = (await api(KEY_A, 'GET', `/tasks/${id}/events`)).body.data as { at: string; kind: string; from: string | null; to: string | null }[];
        const started = events.find((e) => e.kind === 'state' && e.from === 'queued')!;
        const ended = events.find((e) => e.kind === 'state' && e.to === 'succeeded')!;
        return { started: Date.parse(started.at), ended: Date.parse(ended.at) };
      };
      const times = await Promise.all(ids.map(startOf));
      for (let i = 1; i < times.length; i++) assert.ok(times[i]!.started >= times[i - 1]!.ended, `task ${i} started after task ${i - 1} ended: ${JSON.stringify(times)}`);
    });

    test('REELAY_KEY_CREATES_PER_MINUTE=6: past the burst, a 429 with Retry-After in the door\'s envelope, and no task', async () => {
      // Key A made 3 creates above (its tokens came back at 6 a minute since): the rest of the burst passes.
      const answers = [];
      for (let i = 0; i < 8; i++) {
        const a = await api(KEY_A, 'POST', '/tasks', { model: 'veo3.1-fast', prompt: `rate ${i}`, seconds: 4 });
        answers.push(a);
        if (a.status !== 200) break;
      }
      const passed = answers.length - 1;
      assert.ok(passed >= 3 && passed <= 6, `the burst: ${answers.map((a) => a.status)}`);
      assert.equal(answers.at(-1)!.status, 429);
      const refused = answers.at(-1)!;
      assert.equal(refused.body.code, 'rate_limited');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1, String(refused.headers.get('retry-after')));
      const kie = await fetch(`${srv.url}/api/v1/veo/generate`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'rate kie' }) });
      assert.deepEqual([kie.status, ((await kie.json()) as { code: number }).code], [429, 429]);
      assert.equal((await api(KEY_A, 'GET', '/tasks?limit=100')).body.data.length, 3 + passed, 'the refused creates stored nothing');
      assert.equal((await api(KEY_B, 'POST', '/tasks', { model: 'veo3.1-fast', prompt: 'key B has its own count', seconds: 4 })).status, 200);
    });
  });
}
