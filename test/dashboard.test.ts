import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../src/store/open.js';
import { type DashClient, callApi, envKeyId, hidden, setCookies, signIn, trySignIn } from './dashboard-client.js';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, startCallbackReceiver, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

// The dashboard over plain HTTP against a real `reelay serve`, on SQLite and on PostgreSQL.
const KEY_A = 'sk-dash-tenant-a';
const KEY_B = 'sk-dash-tenant-b';
const KEY_OP = 'sk-dash-operator';
const KEY_GONE = 'sk-dash-revoked';
const KEY_C = 'sk-dash-metered';

for (const backend of SERVER_BACKENDS) {
  describe(`dashboard over HTTP (${backend.name})`, { skip: backend.skip }, () => {
    let srv: ServerProcess;
    let env: Record<string, string>;
    const api = (key: string, method: string, path: string, body?: unknown) => callApi(srv.url, key, method, path, body);
    const create = async (key: string, body: Record<string, unknown>) => (await api(key, 'POST', '/tasks', { model: 'veo3.1-fast', seconds: 4, ...body })).id as string;
    const settled = (key: string, id: string) => waitFor(async () => {
      const t = await api(key, 'GET', `/tasks/${id}`);
      return ['succeeded', 'failed', 'canceled'].includes(t.state) ? t : undefined;
    }, 90_000, 200);

    before(async () => {
      // One priced model (10 credits a second), every other one free; all render locally.
      const routing = join(tmpDir(), 'routing.json');
      writeFileSync(routing, JSON.stringify({ models: [{ match: 'priced-model', routes: [{ provider: 'local' }], price: { perSecond: 10 } }] }));
      env = {
        ...(await backend.env()),
        REELAY_DATA_DIR: tmpDir(),
        REELAY_API_KEYS: [KEY_A, KEY_B, KEY_OP, KEY_GONE, KEY_C].join(','),
        REELAY_OPERATOR_KEYS: envKeyId(KEY_OP),
        REELAY_URL_ALLOWLIST: '127.0.0.1',
        REELAY_CALLBACK_BACKOFF_MS: '200',
        REELAY_CONFIG: routing,
      };
      srv = await startServer(env);
    });
    after(async () => {
      // A server that died during the tests says why.
      if (srv && srv.child.exitCode !== null) console.error(`the server exited ${srv.child.exitCode}:\n${srv.output()}`);
      await srv?.stop();
    });

    test('sign-in sets an HttpOnly, SameSite=Strict session cookie on /dashboard (not Secure on http); the session opens the pages', async () => {
      const res = await trySignIn(srv.url, KEY_A);
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/dashboard/tasks');
      const set = res.headers.getSetCookie().find((c) => c.startsWith('reelay_session='))!;
      const attrs = set.split(';').map((s) => s.trim());
      assert.ok(attrs.includes('HttpOnly'), set);
      assert.ok(attrs.includes('SameSite=Strict'), set);
      assert.ok(attrs.includes('Path=/dashboard'), set);
      assert.ok(!attrs.includes('Secure'), 'http: no Secure');
      assert.match(attrs[0]!, /^reelay_session=[A-Za-z0-9_-]{43}$/);
      const c = await signIn(srv.url, KEY_A);
      const page = await c.get('/dashboard');
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /<h1>Overview<\/h1>/);
      assert.match(html, /sk-dash-te…/, 'the nav names the key');
    });

    test('REELAY_DASHBOARD=off: no dashboard, the API still answers', async () => {
      const off = await startServer({ ...(await backend.env()), REELAY_DATA_DIR: tmpDir(), REELAY_API_KEYS: KEY_A, REELAY_DASHBOARD: 'off' });
      try {
        for (const path of ['/dashboard', '/dashboard/signin', '/dashboard/assets/htmx.min.js']) {
          assert.equal((await fetch(`${off.url}${path}`, { redirect: 'manual' })).status, 404, path);
        }
        assert.equal((await fetch(`${off.url}/reelay/v1/tasks`, { headers: { authorization: `Bearer ${KEY_A}` } })).status, 200);
      } finally {
        await off.stop();
      }
    });

    test('a wrong key is refused and opens no session', async () => {
      const res = await trySignIn(srv.url, 'sk-not-a-key');
      assert.equal(res.status, 401);
      assert.equal(setCookies(res).get('reelay_session'), undefined);
      assert.match(await res.text(), /not a live key/);
    });

    test('no session: every page sends the browser to sign-in, with where it was going', async () => {
      for (const path of ['/dashboard', '/dashboard/tasks?model=x', '/dashboard/tasks/anything', '/dashboard/new']) {
        const res = await fetch(`${srv.url}${path}`, { redirect: 'manual' });
        assert.equal(res.status, 303, path);
        assert.equal(res.headers.get('location'), `/dashboard/signin?next=${encodeURIComponent(path)}`);
      }
      const forged = await fetch(`${srv.url}/dashboard/tasks`, { redirect: 'manual', headers: { cookie: 'reelay_session=forged' } });
      assert.equal(forged.status, 303);
      // A stream without a session: the one event that closes it (sse-close) and loads the sign-in page.
      const closed = await fetch(`${srv.url}/dashboard/tasks/stream`, { redirect: 'manual' });
      assert.equal(closed.status, 200);
      assert.match(closed.headers.get('content-type')!, /text\/event-stream/);
      assert.match(await closed.text(), /^event: signed-out\ndata: <div hx-get="\/dashboard\/signin" hx-trigger="load"/);
    });

    test('security headers on every page', async () => {
      const c = await signIn(srv.url, KEY_A);
      for (const res of [await c.get('/dashboard/tasks'), await fetch(`${srv.url}/dashboard/signin`)]) {
        const csp = res.headers.get('content-security-policy')!;
        assert.match(csp, /default-src 'self'/);
        assert.match(csp, /script-src 'self'(;|$)/, 'no inline script');
        assert.match(csp, /frame-ancestors 'none'/);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(res.headers.get('referrer-policy'), 'same-origin');
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
      }
      const page = await (await c.get('/dashboard/tasks')).text();
      assert.doesNotMatch(page, /<script>|<script [^>]*>[^<]+<\/script>/, 'no inline script');
      const js = await fetch(`${srv.url}/dashboard/assets/htmx.min.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type')!, /javascript/);
      assert.match(await js.text(), /htmx/);
    });

    test('a POST without the CSRF token, with another session\'s token, or from another site is refused', async () => {
      const a = await signIn(srv.url, KEY_A);
      const other = await signIn(srv.url, KEY_A);
      assert.notEqual(a.csrf, other.csrf);
      const id = await create(KEY_A, { prompt: 'csrf target', seconds: 8, resolution: '4k' });
      assert.equal((await a.post(`/dashboard/tasks/${id}/cancel`, {})).status, 403);
      assert.equal((await a.post(`/dashboard/tasks/${id}/cancel`, { _csrf: other.csrf })).status, 403);
      assert.equal((await a.post(`/dashboard/tasks/${id}/cancel`, { _csrf: a.csrf }, { origin: 'https://evil.example' })).status, 403);
      assert.equal((await a.post(`/dashboard/tasks/${id}/cancel`, { _csrf: a.csrf }, { 'sec-fetch-site': 'cross-site' })).status, 403);
      assert.equal((await a.post('/dashboard/signout', {})).status, 403);
      assert.notEqual((await api(KEY_A, 'GET', `/tasks/${id}`)).state, 'canceled', 'nothing was canceled');
      // Sign-in without the token its page set is refused too.
      const signin = await fetch(`${srv.url}/dashboard/signin`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `key=${KEY_A}` });
      assert.equal(signin.status, 403);
      // With the token (a form field, or the header htmx sends) it goes through.
      const ok = await a.post(`/dashboard/tasks/${id}/cancel`, {}, { 'x-csrf-token': a.csrf });
      assert.equal(ok.status, 303);
      assert.equal((await settled(KEY_A, id)).state, 'canceled');
    });

    test('a prompt with <script> is written as text on the list and the task page', async () => {
      const id = await create(KEY_A, { prompt: '<script>alert(1)</script> "quoted" & more' });
      const c = await signIn(srv.url, KEY_A);
      for (const path of ['/dashboard/tasks', `/dashboard/tasks/${id}`, `/dashboard/tasks?q=${encodeURIComponent('<script>')}`]) {
        const html = await (await c.get(path)).text();
        assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; more'), path);
        assert.ok(!html.includes('<script>alert(1)'), path);
      }
    });

    test('filters and search live in the URL, run on the server, narrow the list and round-trip into the form; Older follows the cursor', async () => {
      const zebra = await create(KEY_B, { prompt: 'a zebra crossing', model: 'veo3.1' });
      const zebra2 = await create(KEY_B, { prompt: 'another Zebra herd', model: 'veo3.1' });
      const fast = await create(KEY_B, { prompt: 'a zebra, fast', model: 'veo3.1-fast' });
      const plain = await create(KEY_B, { prompt: 'nothing striped', model: 'veo3.1' });
      for (const id of [zebra, zebra2, fast, plain]) await settled(KEY_B, id);
      const c = await signIn(srv.url, KEY_B);
      const ids = (html: string) => [...html.matchAll(/<tr id="task-([^"]+)"/g)].map((m) => m[1]);
      const page = await (await c.get('/dashboard/tasks?q=zebra&model=veo3.1&state=succeeded&state=failed')).text();
      assert.deepEqual(ids(page), [zebra2, zebra]);
      assert.match(page, /name="q" value="zebra"/);
      assert.match(page, /<option selected>veo3.1<\/option>/);
      assert.match(page, /value="succeeded" checked/);
      assert.match(page, /value="failed" checked/);
      assert.doesNotMatch(page, /value="queued" checked/);
      // The live stream of the page follows the same filters.
      assert.match(page, /sse-connect="\/dashboard\/tasks\/stream\?state=failed&amp;state=succeeded&amp;model=veo3.1&amp;q=zebra&amp;since=\d+"/);
      // A search by task id; a state that matches none.
      assert.deepEqual(ids(await (await c.get(`/dashboard/tasks?q=${fast}`)).text()), [fast]);
      assert.deepEqual(ids(await (await c.get('/dashboard/tasks?state=failed&q=zebra')).text()), []);
      // A time range that ends before the tasks were made.
      assert.deepEqual(ids(await (await c.get('/dashboard/tasks?to=2001-01-01T00:00')).text()), []);
      // Pages of two: Older carries the cursor and the filters.
      const first = await (await c.get('/dashboard/tasks?model=veo3.1&limit=2')).text();
      assert.deepEqual(ids(first), [plain, zebra2]);
      const older = /<a rel="next" href="([^"]+)"/.exec(first)![1]!.replaceAll('&amp;', '&');
      assert.equal(older, `/dashboard/tasks?model=veo3.1&limit=2&after=${zebra2}`);
      const second = await (await c.get(older)).text();
      assert.deepEqual(ids(second), [zebra]);
      assert.doesNotMatch(second, /rel="next"/);
    });

    test("another tenant's task id gives the same not-found page as an unknown id; an operator sees every tenant", async () => {
      const mine = await create(KEY_A, { prompt: 'tenant a only' });
      const theirs = await create(KEY_B, { prompt: 'tenant b only' });
      const b = await signIn(srv.url, KEY_B);
      const other = await b.get(`/dashboard/tasks/${mine}`);
      const unknown = await b.get('/dashboard/tasks/task_does_not_exist');
      assert.equal(other.status, 404);
      assert.equal(unknown.status, 404);
      const strip = (s: string, id: string) => s.replace(id, 'ID').replace(/name="_csrf" value="[^"]*"/, '');
      assert.equal(strip(await other.text(), mine), strip(await unknown.text(), 'task_does_not_exist'));
      assert.equal((await b.get(`/dashboard/tasks/${mine}/json`)).status, 404);
      assert.doesNotMatch(await (await b.get('/dashboard/tasks')).text(), new RegExp(mine));

      const op = await signIn(srv.url, KEY_OP);
      const all = await (await op.get('/dashboard/tasks')).text();
      assert.match(all, new RegExp(`task-${mine}"`));
      assert.match(all, new RegExp(`task-${theirs}"`));
      assert.match(all, /<th>Tenant<\/th>/);
      assert.match(all, /badge operator/);
      const tenantB = `t_${(await import('node:crypto')).createHash('sha256').update(KEY_B).digest('hex').slice(0, 16)}`;
      const onlyB = await (await op.get(`/dashboard/tasks?tenant=${tenantB}`)).text();
      assert.match(onlyB, new RegExp(`task-${theirs}"`));
      assert.doesNotMatch(onlyB, new RegExp(`task-${mine}"`));
      const overview = await (await op.get(`/dashboard?tenant=${tenantB}`)).text();
      assert.match(overview, new RegExp(`<option selected>${tenantB}</option>`));
      assert.match(overview, new RegExp(`Tenant ${tenantB}`));
      assert.match(await (await op.get('/dashboard')).text(), /Every tenant/);
      assert.equal((await op.get(`/dashboard/tasks/${mine}`)).status, 200);
      assert.equal((await op.get(`/dashboard/tasks/${theirs}`)).status, 200);
    });

    test('a metered task shows its credits on the list, its page (reserved, charged, refunded) and the overview', async () => {
      const tenantC = `t_${(await import('node:crypto')).createHash('sha256').update(KEY_C).digest('hex').slice(0, 16)}`;
      const store = await openStore({ dataDir: env.REELAY_DATA_DIR!, ...(env.REELAY_DATABASE_URL ? { databaseUrl: env.REELAY_DATABASE_URL } : {}) }, { migrate: false, cache: false });
      try {
        await store.addCredits(tenantC, 100, Date.now(), 'for the dashboard test');
      } finally {
        await store.close();
      }
      const id = await create(KEY_C, { prompt: 'a paid video', model: 'priced-model', seconds: 4 });
      await settled(KEY_C, id);
      const c = await signIn(srv.url, KEY_C);
      const list = await (await c.get('/dashboard/tasks')).text();
      assert.match(list, new RegExp(`<tr id="task-${id}"[\\s\\S]*?<td class="num">40</td>`));
      const page = await (await c.get(`/dashboard/tasks/${id}`)).text();
      assert.match(page, /<dt>Reserved<\/dt><dd>40<\/dd><dt>Charged<\/dt><dd>40<\/dd><dt>Refunded<\/dt><dd>0<\/dd>/);
      assert.match(page, /<td>reserve<\/td><td>video<\/td><td class="num">-40<\/td>/);
      assert.match(await (await c.get('/dashboard')).text(), /<span class="n">40<\/span> credits spent in the last day/);
    });

    test("a revoked key's session stops working at once; sign-out ends a session", async () => {
      const c = await signIn(srv.url, KEY_GONE);
      assert.equal((await c.get('/dashboard/tasks')).status, 200);
      const store = await openStore({ dataDir: env.REELAY_DATA_DIR!, ...(env.REELAY_DATABASE_URL ? { databaseUrl: env.REELAY_DATABASE_URL } : {}) }, { migrate: false, cache: false });
      try {
        assert.equal(await store.revokeKey(envKeyId(KEY_GONE), Date.now()), 1);
      } finally {
        await store.close();
      }
      const res = await c.get('/dashboard/tasks');
      assert.equal(res.status, 303);
      assert.match(res.headers.get('location')!, /^\/dashboard\/signin/);

      const d = await signIn(srv.url, KEY_A);
      const out = await d.post('/dashboard/signout', { _csrf: d.csrf });
      assert.equal(out.status, 303);
      assert.match(out.headers.getSetCookie().join(), /reelay_session=; .*Max-Age=0/);
      assert.equal((await d.get('/dashboard/tasks')).status, 303, 'the old cookie opens nothing');
    });

    /** Reads an SSE answer into a string as it comes; `stop` ends the reading. */
    const readAll = (res: Response) => {
      let text = '';
      let ended = false;
      const reader = res.body!.getReader();
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += Buffer.from(value).toString();
        }
      })()
        .catch(() => {})
        .finally(() => (ended = true));
      return { text: () => text, ended: () => ended, stop: async () => { await reader.cancel().catch(() => {}); await reading; } };
    };

    /** The stream of the task list's page, as the page's `sse-connect` names it. */
    const pageStream = async (c: DashClient) => {
      const page = await (await c.get('/dashboard/tasks')).text();
      return c.get(/sse-connect="([^"]+)"/.exec(page)![1]!.replaceAll('&amp;', '&'), { accept: 'text/event-stream' });
    };

    test('a live stream ends with signed-out once its session is signed out; a task made before it connected is still sent as new', async () => {
      const c = await signIn(srv.url, KEY_A);
      const page = await (await c.get('/dashboard/tasks')).text();
      // Made after the page read its list, before its stream connects.
      const early = await create(KEY_A, { prompt: 'made between the page and its stream' });
      const stream = /sse-connect="([^"]+)"/.exec(page)![1]!.replaceAll('&amp;', '&');
      const live = readAll(await c.get(stream, { accept: 'text/event-stream' }));
      try {
        await waitFor(async () => (live.text().includes(`event: new\ndata: <tr id="task-${early}"`) ? true : undefined), 30_000, 100);
        assert.equal((await c.post('/dashboard/signout', { _csrf: c.csrf })).status, 303);
        // The stream asks again about every ten seconds.
        await waitFor(async () => (live.ended() ? true : undefined), 40_000, 100);
        assert.match(live.text(), /event: signed-out\ndata: <div hx-get="\/dashboard\/signin"/);
      } finally {
        await live.stop();
      }
    });

    test('a carriage return in a prompt is a character reference on the stream, never a line break', async () => {
      const c = await signIn(srv.url, KEY_A);
      const live = readAll(await pageStream(c));
      try {
        const id = await create(KEY_A, { prompt: 'hello\revent: spoofed\rdata: INJECTED\r\rtail' });
        await waitFor(async () => (live.text().includes(`<tr id="task-${id}"`) ? true : undefined), 30_000, 100);
        assert.ok(!live.text().includes('\r'), 'no bare CR on the stream');
        assert.doesNotMatch(live.text(), /^event: spoofed/m);
        assert.match(live.text(), /hello&#13;event: spoofed&#13;data: INJECTED/);
      } finally {
        await live.stop();
      }
    });

    test('the list stream sends a new task as a row, then its row again when it changes, over one SSE connection', async () => {
      const c = await signIn(srv.url, KEY_A);
      const res = await pageStream(c);
      assert.match(res.headers.get('content-type')!, /text\/event-stream/);
      const live = readAll(res);
      try {
        const id = await create(KEY_A, { prompt: 'watch me <b>live</b>' });
        await waitFor(async () => (live.text().includes(`event: new\ndata: <tr id="task-${id}"`) ? true : undefined), 30_000, 100);
        await waitFor(async () => (new RegExp(`event: task-${id}\\n(data: .*\\n)*data: <td><span class="badge state-succeeded">`).test(live.text()) ? true : undefined), 90_000, 200);
        assert.ok(live.text().includes('watch me &lt;b&gt;live&lt;/b&gt;'));
      } finally {
        await live.stop();
      }
    });

    test("an operator's list stream sends every tenant's new tasks", async () => {
      const op = await signIn(srv.url, KEY_OP);
      const live = readAll(await pageStream(op));
      try {
        const a = await create(KEY_A, { prompt: 'seen by the operator (a)' });
        const b = await create(KEY_B, { prompt: 'seen by the operator (b)' });
        for (const id of [a, b]) await waitFor(async () => (live.text().includes(`event: new\ndata: <tr id="task-${id}"`) ? true : undefined), 30_000, 100);
        assert.match(live.text(), /<td class="tenant">t_/, 'rows carry their tenant');
      } finally {
        await live.stop();
      }
    });

    test('New video: a multipart form with an image makes one task however often it is sent, and its page shows the image', async () => {
      const c = await signIn(srv.url, KEY_A);
      const form = await (await c.get('/dashboard/new')).text();
      const idem = hidden(form, 'idem')!;
      assert.ok(idem);
      // A 1x1 PNG.
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
      const send = (csrf: string) => {
        const fd = new FormData();
        fd.set('_csrf', csrf);
        fd.set('idem', idem);
        fd.set('prompt', 'a kite over the dunes');
        fd.set('model', 'veo3.1-fast');
        fd.set('aspect_ratio', '9:16');
        fd.set('seconds', '4');
        fd.set('resolution', '720p');
        fd.set('images', new Blob([png], { type: 'image/png' }), 'frame.png');
        return fetch(`${srv.url}/dashboard/new`, { method: 'POST', redirect: 'manual', headers: { cookie: c.cookie, origin: srv.url }, body: fd });
      };
      assert.equal((await send('wrong')).status, 403);
      const one = await send(c.csrf);
      assert.equal(one.status, 303, await one.text());
      const two = await send(c.csrf);
      assert.equal(two.status, 303);
      const where = one.headers.get('location')!;
      assert.equal(two.headers.get('location'), where, 'the same task');
      const id = decodeURIComponent(where.split('/').pop()!);
      const task = await api(KEY_A, 'GET', `/tasks/${id}`);
      assert.equal(task.aspect_ratio, '9:16');
      assert.equal(task.seconds, 4);
      assert.equal(task.images, 1);
      const list = await api(KEY_A, 'GET', `/tasks?limit=100`);
      assert.equal(list.data.filter((t: any) => t.prompt === 'a kite over the dunes').length, 1);
      await settled(KEY_A, id);
      const html = await (await c.get(where)).text();
      const img = /<img src="([^"]+)" alt="input image 1"/.exec(html);
      assert.ok(img, 'a thumbnail of the input image');
      assert.equal((await fetch(img[1]!.replaceAll('&amp;', '&'))).status, 200);
      assert.match(html, /<video controls preload="metadata" src="[^"]+\/files\/[^"]+\/video\.mp4"/);

      // The API's own limits hold for the form: a prompt past 20,000 characters makes no task.
      const long = new FormData();
      long.set('_csrf', c.csrf);
      long.set('idem', `${idem}-long`);
      long.set('prompt', 'x'.repeat(60_000));
      long.set('model', 'veo3.1-fast');
      const refused = await fetch(`${srv.url}/dashboard/new`, { method: 'POST', redirect: 'manual', headers: { cookie: c.cookie, origin: srv.url }, body: long });
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /at most 20000/);
      assert.equal((await api(KEY_A, 'GET', `/tasks?limit=100`)).data.filter((t: any) => t.prompt.startsWith('xxxx')).length, 0);
      // A file is taken for what its bytes are, not for the type the browser gave it.
      const fake = new FormData();
      fake.set('_csrf', c.csrf);
      fake.set('idem', `${idem}-fake`);
      fake.set('prompt', 'from a text file said to be a PNG');
      fake.set('model', 'veo3.1-fast');
      fake.set('images', new Blob([Buffer.from('not an image at all')], { type: 'image/png' }), 'notes.png');
      const notImage = await fetch(`${srv.url}/dashboard/new`, { method: 'POST', redirect: 'manual', headers: { cookie: c.cookie, origin: srv.url }, body: fake });
      assert.equal(notImage.status, 400);
      assert.match(await notImage.text(), /notes\.png is not a PNG, JPEG or WebP image/);
    });

    test('the task page: timeline, Download JSON, and Resend of a delivery sends it again', async () => {
      const receiver = await startCallbackReceiver();
      try {
        const id = await create(KEY_A, { prompt: 'call me back', webhook_url: receiver.url });
        await settled(KEY_A, id);
        const arrived = () => [...receiver.byTask.values()].flat().filter((b) => b.includes(id)).length;
        await waitFor(async () => (arrived() >= 1 ? true : undefined), 30_000);
        const c = await signIn(srv.url, KEY_A);
        const page = await (await c.get(`/dashboard/tasks/${id}`)).text();
        assert.match(page, /generating → <b>succeeded<\/b>/);
        assert.match(page, /class="badge delivery-delivered"/);
        const action = /<form method="post" action="([^"]+\/resend)"/.exec(page)![1]!;
        assert.equal((await c.post(action, { _csrf: c.csrf })).status, 303);
        await waitFor(async () => (arrived() >= 2 ? true : undefined), 30_000);

        const json = await c.get(`/dashboard/tasks/${id}/json`);
        assert.match(json.headers.get('content-disposition')!, /^attachment; filename=".+\.json"$/);
        const body = (await json.json()) as any;
        assert.equal(body.task.id, id);
        assert.ok(body.events.some((e: any) => e.to === 'succeeded'));
        assert.equal(body.deliveries.length, 1);
        assert.ok(Array.isArray(body.ledger));
      } finally {
        await receiver.close();
      }
    });
  });
}
