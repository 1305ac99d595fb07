import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const KEY = 'sk-credits-e2e-key';
/** Every model renders locally, at 10 credits a second (30 at 4k); a 1080p rendition asked for later costs 5, a 4k one 50. */
const ROUTING = { models: [{ match: '*', routes: [{ provider: 'local' }], price: { perSecond: 10, perSecondAt: { '4k': 30 }, hd: 5, uhd: 50 } }] };

for (const backend of SERVER_BACKENDS) {
  describe(`credits against a real server (${backend.name})`, { skip: backend.skip }, () => {
    let srv: ServerProcess;
    let env: Record<string, string>;
    const auth = { authorization: `Bearer ${KEY}` };
    const headers = { ...auth, 'content-type': 'application/json' };
    const native = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${srv.url}/reelay/v1${path}`, { method, headers: body === undefined ? auth : headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
    };
    const kie = async (path: string, body?: unknown, extra: Record<string, string> = {}) => {
      const res = await fetch(`${srv.url}/api/v1/${path}`, body === undefined ? { headers: auth } : { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(body) });
      return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: (await res.json()) as any };
    };
    /** `reelay keys …` against the server's store; its stdout. */
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [CLI, 'keys', ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    const balance = async () => (await native('GET', '/balance')).body.credits as number | null;
    const ledger = async (query = '') => (await native('GET', `/ledger?limit=100${query}`)).body.data as { kind: string; item: string | null; amount: number; charged: number | null; task_id: string | null }[];
    const closed = (taskId: string) => waitFor(async () => (await ledger(`&task_id=${taskId}`)).find((e) => (e.kind === 'settle' || e.kind === 'refund') && (e.item === 'video' || e.item === 'extend')), 120_000, 100);

    before(async () => {
      const work = tmpDir();
      const config = join(work, 'routing.json');
      writeFileSync(config, JSON.stringify(ROUTING));
      // Renders report "running" for a second at least: the cancel below comes while one runs.
      env = { ...(await backend.env()), REELAY_DATA_DIR: work, REELAY_API_KEYS: KEY, REELAY_CONFIG: config, REELAY_RENDER_DELAY_MS: '1000' };
      srv = await startServer(env);
    });
    after(async () => {
      await srv?.stop();
    });

    test('a metered key: reserved at create, settled on success, refunded on a safety rejection and a cancel; too few credits is each door\'s own refusal, and no task', async () => {
      // Not metered until its first top-up: free, and kie's credit reads 0.
      assert.deepEqual((await kie('chat/credit')).body, { code: 200, msg: 'success', data: 0 });
      assert.deepEqual((await native('GET', '/balance')).body, { object: 'balance', metered: false, credits: null, updated_at: null });
      const free = await native('POST', '/tasks', { model: 'veo3.1-fast', prompt: 'before any credit', seconds: 4 });
      assert.equal(free.body.credits_reserved, null);

      assert.equal(cli('credit', KEY.slice(0, 10), '200', '--note', 'first top-up'), '200');
      assert.deepEqual((await kie('chat/credit')).body, { code: 200, msg: 'success', data: 200 });

      // 50 identical creates with one Idempotency-Key: one task, one reservation of 8 s × 10.
      const answers = await Promise.all(Array.from({ length: 50 }, () => kie('veo/generate', { prompt: 'paid once, asked fifty times' }, { 'idempotency-key': 'credits-race' })));
      const taskIds = new Set(answers.filter((a) => a.status === 200).map((a) => a.body.data.taskId as string));
      assert.equal(taskIds.size, 1, JSON.stringify(answers.map((a) => [a.status, a.body.code])));
      const paid = [...taskIds][0]!;
      assert.equal(await balance(), 120);
      assert.deepEqual((await ledger(`&task_id=${paid}`)).map((e) => [e.kind, e.amount]), [['reserve', -80]]);
      // Success settles to the seconds made: 8 s, all of it.
      const settled = await closed(paid);
      assert.deepEqual([settled.kind, settled.amount, settled.charged], ['settle', 0, 80]);
      assert.equal((await kie(`veo/record-info?taskId=${paid}`)).body.data.successFlag, 1);
      assert.equal(await balance(), 120);
      const trail = (await native('GET', `/tasks/${paid}/events`)).body.data.filter((e: { kind: string }) => e.kind === 'ledger').map((e: { detail: { entry: string; amount: number } }) => [e.detail.entry, e.detail.amount]);
      assert.deepEqual(trail, [['reserve', -80], ['settle', 0]], 'the audit trail holds its ledger entries');

      // Its 1080p rendition, asked for now, is its own item: reserved with the ask, kept once stored.
      assert.equal((await kie(`veo/get-1080p-video?taskId=${paid}`)).body.code, 400, '1080P is processing');
      assert.equal(await balance(), 115);
      await waitFor(async () => ((await kie(`veo/get-1080p-video?taskId=${paid}`)).body.code === 200 ? true : undefined), 120_000, 200);
      const hd = await waitFor(async () => (await ledger(`&task_id=${paid}`)).find((e) => e.kind === 'settle' && e.item === 'hd:1'), 30_000, 100);
      assert.deepEqual([hd.amount, hd.charged], [0, 5]);
      assert.equal(await balance(), 115);

      // A safety rejection gives it all back.
      const unsafe = (await kie('veo/generate', { prompt: 'something nsfw please' })).body.data.taskId as string;
      assert.deepEqual([(await closed(unsafe)).kind, (await closed(unsafe)).amount], ['refund', 80]);
      assert.equal((await kie(`veo/record-info?taskId=${unsafe}`)).body.data.successFlag, 3);
      // So does a cancel that stops the work.
      const canceled = (await native('POST', '/tasks', { model: 'veo3.1-fast', prompt: 'canceled before it costs', seconds: 4 })).body;
      assert.equal(canceled.credits_reserved, 40);
      assert.equal((await native('POST', `/tasks/${canceled.id}/cancel`)).status, 200);
      assert.deepEqual([(await closed(canceled.id)).kind, (await closed(canceled.id)).amount], ['refund', 40]);
      assert.equal(await balance(), 115);

      // 15 credits left: every door refuses a task that costs more, in its own words, and stores none.
      assert.equal(cli('credit', KEY.slice(0, 10), '-100', '--note', 'taken back'), '15');
      const before = (await native('GET', '/tasks?limit=100')).body.data.length as number;
      const kieRefused = await kie('veo/generate', { prompt: 'too dear' });
      assert.deepEqual([kieRefused.status, kieRefused.body], [200, { code: 402, msg: 'Insufficient Credits', data: null }]);
      const problem = await native('POST', '/tasks', { model: 'veo3.1-fast', prompt: 'too dear', seconds: 4 });
      assert.deepEqual([problem.status, problem.type?.split(';')[0], problem.body.status], [402, 'application/problem+json', 402]);
      assert.match(problem.body.detail, /costs 40 credits and the balance is 15/);
      // So is a 4k rendition of a finished task (50), which is then not asked for.
      const uhd = await kie('veo/get-4k-video', { taskId: paid });
      assert.deepEqual([uhd.status, uhd.body.code, uhd.body.msg], [200, 402, 'Insufficient Credits']);
      assert.equal((await native('GET', `/tasks/${paid}`)).body.outputs.video_4k, null);
      const kkiai = await fetch(`${srv.url}/v1/video/create`, { method: 'POST', headers, body: JSON.stringify({ model: 'veo3.1-fast', prompt: 'too dear' }) });
      assert.deepEqual([kkiai.status, ((await kkiai.json()) as any).error.code], [402, 'insufficient_user_quota']);
      const gemini = await fetch(`${srv.url}/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning`, { method: 'POST', headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ prompt: 'too dear' }] }) });
      assert.deepEqual([gemini.status, ((await gemini.json()) as any).error.status], [429, 'RESOURCE_EXHAUSTED']);
      // The openai SDK gets its quota error at once: it is told not to retry (x-should-retry: false).
      let sent = 0;
      const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 2, fetch: (url, init) => (String(url).startsWith(srv.url) && sent++, fetch(url, init)) });
      await assert.rejects(openai.videos.create({ model: 'sora-2', prompt: 'too dear' }), (e: unknown) => e instanceof OpenAI.APIError && e.status === 429 && e.code === 'insufficient_quota');
      assert.equal(sent, 1, 'not retried');
      assert.equal((await native('GET', '/tasks?limit=100')).body.data.length, before, 'no task was stored');
      assert.equal(await balance(), 15);

      // The ledger adds up to the balance, and the CLI shows the same.
      const entries = await ledger();
      assert.equal(entries.reduce((sum, e) => sum + e.amount, 0), 15);
      assert.equal(entries.filter((e) => e.kind === 'reserve').length, 4, 'one reservation per paid item (three tasks, one rendition), none for the refused ones');
      assert.match(cli('ledger', KEY.slice(0, 10)), /^balance 15\n/);
    });
  });
}
