import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-webhook-endpoints-e2e';

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** A receiver whose paths answer as told: `/gone` 410, `/flaky` 503 to the first try of each message, anything else 200. */
async function receiver(): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(body) });
      const id = String(req.headers['webhook-id']);
      res.statusCode = req.url === '/gone' ? 410 : req.url === '/flaky' && !seen.has(id) ? 503 : 200;
      seen.add(id);
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const backends = SERVER_BACKENDS;

for (const backend of backends) {
  describe(`webhook endpoints against a real server (${backend.name})`, { skip: backend.skip }, () => {
    let srv: ServerProcess;
    let rx: Awaited<ReturnType<typeof receiver>>;
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${srv.url}/reelay/v1${path}`, { method, headers: body === undefined ? { authorization: headers.authorization } : headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, body: (await res.json()) as any };
    };

    before(async () => {
      rx = await receiver();
      srv = await startServer({ ...(await backend.env()), REELAY_DATA_DIR: tmpDir(), REELAY_API_KEYS: KEY, REELAY_URL_ALLOWLIST: '127.0.0.1', REELAY_CALLBACK_BACKOFF_MS: '200' });
    });
    after(async () => {
      await srv?.stop();
      await rx?.close();
    });

    test('endpoints get the ends they subscribed to, of tasks of every door, signed; a 410 disables one', async () => {
      const all = await api('POST', '/webhooks', { url: `${rx.url}/all` });
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual([all.body.object, all.body.events, all.body.status], ['webhook_endpoint', ['video.completed', 'video.failed', 'video.canceled'], 'enabled']);
      const canceledOnly = (await api('POST', '/webhooks', { url: `${rx.url}/canceled`, events: ['video.canceled'] })).body;
      const gone = (await api('POST', '/webhooks', { url: `${rx.url}/gone` })).body;
      assert.equal((await api('POST', '/webhooks', { url: `${rx.url}/x`, events: ['video.started'] })).status, 400);
      assert.equal((await api('POST', '/webhooks', { url: 'http://10.1.2.3/x' })).status, 400, 'a private address is refused');
      assert.deepEqual((await api('GET', '/webhooks')).body.data.map((e: { id: string }) => e.id), [all.body.id, canceledOnly.id, gone.id]);
      // The engine reads the endpoints when it starts and when they change here.
      await new Promise((r) => setTimeout(r, 300));

      // A native task canceled while it runs: every endpoint that subscribed to cancels gets it.
      const nativeId = (await api('POST', '/tasks', { model: 'veo3.1-fast', prompt: 'a long one to cancel', resolution: '4k' })).body.id as string;
      assert.equal((await api('POST', `/tasks/${nativeId}/cancel`)).status, 200);
      const byPath = (path: string) => rx.got.filter((g) => g.path === path);
      await waitFor(async () => (byPath('/all').length >= 1 && byPath('/canceled').length >= 1 ? true : undefined), 60_000, 100);
      assert.deepEqual(byPath('/all').map((g) => [g.body.type, g.body.data.id, g.body.data.state]), [['video.canceled', nativeId, 'canceled']]);
      assert.deepEqual(byPath('/canceled').map((g) => g.body.type), ['video.canceled']);
      assert.match(String(byPath('/all')[0]!.headers['webhook-id']), /^msg_/);
      assert.match(String(byPath('/all')[0]!.headers['webhook-signature']), /^v1,/);
      // The 410 endpoint: one try, then disabled.
      await waitFor(async () => ((await api('GET', '/webhooks')).body.data.find((e: { id: string }) => e.id === gone.id).status === 'disabled' ? true : undefined), 10_000, 100);
      const disabled = (await api('GET', '/webhooks')).body.data.find((e: { id: string }) => e.id === gone.id);
      assert.match(disabled.disabled_reason, /410/);
      assert.equal(byPath('/gone').length, 1);
      // The task's delivery log names each of its end's endpoints, the one that answered 410 too.
      const deliveries = (await api('GET', `/tasks/${nativeId}/deliveries`)).body.data as { url: string }[];
      assert.deepEqual(deliveries.map((d) => d.url).sort(), [`${rx.url}/all`, `${rx.url}/canceled`, `${rx.url}/gone`]);

      // A kie task that succeeds: the disabled endpoint is owed nothing, the cancel-only one neither.
      const kie = await fetch(`${srv.url}/api/v1/veo/generate`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a short one for the endpoints' }) });
      const kieId = ((await kie.json()) as { data: { taskId: string } }).data.taskId;
      await waitFor(async () => (byPath('/all').length >= 2 ? true : undefined), 60_000, 100);
      const completed = byPath('/all')[1]!;
      assert.deepEqual([completed.body.type, completed.body.data.id, completed.body.data.state, completed.body.data.dialect], ['video.completed', kieId, 'succeeded', 'kie']);
      assert.match(completed.body.data.outputs.video, /\.mp4$/);
      assert.deepEqual((await api('GET', `/tasks/${kieId}/deliveries`)).body.data.map((d: { url: string }) => d.url), [`${rx.url}/all`]);
      const tries = byPath('/gone').length;

      // Deleted: no more. Another task's end reaches only the endpoints left.
      assert.deepEqual((await api('DELETE', `/webhooks/${all.body.id}`)).body, { id: all.body.id, object: 'webhook_endpoint.deleted', deleted: true });
      assert.equal((await api('DELETE', `/webhooks/${all.body.id}`)).status, 404);
      await new Promise((r) => setTimeout(r, 300));
      const second = (await api('POST', '/tasks', { model: 'veo3.1-fast', prompt: 'after the delete' })).body.id as string;
      assert.equal((await api('POST', `/tasks/${second}/cancel`)).status, 200);
      await waitFor(async () => (byPath('/canceled').length >= 2 ? true : undefined), 10_000, 100);
      assert.ok(!byPath('/all').some((g) => g.body.data.id === second), 'the deleted endpoint got nothing');
      assert.equal(byPath('/gone').length, tries, 'the disabled endpoint got nothing');
      assert.deepEqual((await api('GET', `/tasks/${second}/deliveries`)).body.data.map((d: { url: string }) => d.url), [`${rx.url}/canceled`], 'nor was owed anything');

      // An OpenAI video deleted while it is made: the task is gone, and its cancel is still sent,
      // signed, to an endpoint whose first try fails (so it is still owed when the task goes).
      assert.equal((await api('POST', '/webhooks', { url: `${rx.url}/flaky`, events: ['video.canceled'] })).status, 200);
      const video = await fetch(`${srv.url}/v1/videos`, { method: 'POST', headers, body: JSON.stringify({ model: 'sora-2', prompt: 'deleted while it is made', seconds: '12' }) });
      const videoId = ((await video.json()) as { id: string }).id;
      assert.equal((await fetch(`${srv.url}/v1/videos/${videoId}`, { method: 'DELETE', headers: { authorization: headers.authorization } })).status, 200);
      const flakyTries = await waitFor(async () => {
        const mine = byPath('/flaky').filter((g) => g.body.data.id === videoId);
        return mine.length >= 2 ? mine : undefined;
      }, 30_000, 100);
      assert.deepEqual(flakyTries.map((g) => [g.body.type, g.body.data.dialect]), [['video.canceled', 'openai'], ['video.canceled', 'openai']]);
      assert.equal(flakyTries[1]!.headers['webhook-id'], flakyTries[0]!.headers['webhook-id'], 'the retry of the same message');
      assert.match(String(flakyTries[1]!.headers['webhook-signature']), /^v1,[A-Za-z0-9+/=]{40,}/);
      assert.equal((await fetch(`${srv.url}/v1/videos/${videoId}`, { headers: { authorization: headers.authorization } })).status, 404, 'the video is gone');
    });
  });
}
