import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { callApi } from './dashboard-client.js';
import { tmpDir } from './tmp.js';

// The dashboard in a real browser: Debian's Chromium, driven by playwright-core, against a real
// `reelay serve`. Without the browser the test is skipped, except on CI (CI=true), where it fails.
const CHROMIUM = process.env.REELAY_TEST_CHROMIUM || '/usr/bin/chromium';
const found = existsSync(CHROMIUM);
const skip = found || process.env.CI === 'true' ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set REELAY_TEST_CHROMIUM)`;

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Screenshots of this run (git ignores .tmp/); the README's copies are in docs/screenshots/. */
const SHOTS = join(REPO, '.tmp', 'screenshots');
const DOCS = join(REPO, 'docs', 'screenshots');

const KEY = 'sk-browser-tenant-a';
const OTHER = 'sk-browser-tenant-b';

describe('dashboard in Chromium', { skip, timeout: 600_000 }, () => {
  let srv: ServerProcess;
  let browser: Browser;
  let page: Page;
  const hooks: { id: string; at: number }[] = [];
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hooks.push({ id: String(req.headers['webhook-id']), at: Date.now() });
      res.end('ok');
    });
  });
  const dialogs: string[] = [];

  const api = (key: string, method: string, path: string, body?: unknown) => callApi(srv.url, key, method, path, body);
  const create = async (body: Record<string, unknown>, key = KEY) => (await api(key, 'POST', '/tasks', { model: 'veo3.1-fast', seconds: 4, ...body })).id as string;
  const until = (id: string, states: string[], key = KEY) =>
    waitFor(async () => {
      const t = await api(key, 'GET', `/tasks/${id}`);
      return states.includes(t.state) ? t : undefined;
    }, 120_000, 250);
  // Each run writes its screenshots to .tmp/screenshots/; with REELAY_UPDATE_SCREENSHOTS=1 they
  // replace the README's too.
  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, name), fullPage: true });
    if (process.env.REELAY_UPDATE_SCREENSHOTS === '1') {
      mkdirSync(DOCS, { recursive: true });
      copyFileSync(join(SHOTS, name), join(DOCS, name));
    }
  };

  before(async () => {
    if (!found) throw new Error(`CI=true and no Chromium at ${CHROMIUM}: .ci/run installs it with apt`);
    receiver.listen(0, '127.0.0.1');
    await new Promise((r) => receiver.once('listening', r));
    srv = await startServer({ REELAY_DATA_DIR: tmpDir(), REELAY_API_KEYS: `${KEY},${OTHER}`, REELAY_URL_ALLOWLIST: '127.0.0.1', REELAY_CALLBACK_BACKOFF_MS: '200' });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await srv?.stop();
    await new Promise((r) => receiver.close(r));
  });

  test('sign-in with a key goes on to the page asked for', async () => {
    await page.goto(`${srv.url}/dashboard/tasks`);
    assert.match(page.url(), /\/dashboard\/signin\?next=/);
    await page.fill('input[name="key"]', KEY);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/dashboard\/tasks$/);
    assert.equal(await page.textContent('h1'), 'Tasks');
    assert.match((await page.textContent('.who'))!, /sk-browser…/);
  });

  test('the list filters through the URL; a task made through the API arrives live and turns succeeded without a reload; Pause stops it', async () => {
    const a = await create({ prompt: 'an owl at night', model: 'veo3.1' });
    const b = await create({ prompt: 'a fox in snow' });
    await until(a, ['succeeded']);
    await until(b, ['succeeded']);
    await page.goto(`${srv.url}/dashboard/tasks`);
    await page.check('input[name="state"][value="succeeded"]');
    await page.selectOption('select[name="model"]', 'veo3.1');
    await page.click('form.filters button[type="submit"]');
    await page.waitForURL(/state=succeeded/);
    assert.match(page.url(), /model=veo3.1(&|$)/);
    assert.deepEqual(await page.$$eval('tbody#rows tr', (rows) => rows.map((r) => r.id)), [`task-${a}`]);
    await page.fill('input[name="q"]', 'owl');
    await page.click('form.filters button[type="submit"]');
    await page.waitForURL(/q=owl/);
    assert.deepEqual(await page.$$eval('tbody#rows tr', (rows) => rows.map((r) => r.id)), [`task-${a}`]);

    // Live: the unfiltered list, its stream open; a new task appears, then succeeds, in place.
    const streamed = page.waitForRequest((r) => r.url().includes('/dashboard/tasks/stream'));
    await page.goto(`${srv.url}/dashboard/tasks`);
    await streamed;
    await page.evaluate(() => ((globalThis as any).marker = 42));
    const live = await create({ prompt: 'a heron, live' });
    await page.waitForSelector(`#task-${live}`, { timeout: 30_000 });
    await page.waitForSelector(`#task-${live} .state-succeeded`, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => (globalThis as any).marker), 42, 'no reload');

    // Paused: the stream is closed, a new task does not arrive; Resume shows it.
    await page.click('#list button.switch');
    await page.waitForSelector('#list .live.paused');
    assert.equal(await page.getAttribute('#list', 'sse-connect'), null);
    const quiet = await create({ prompt: 'made while paused' });
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await page.$(`#task-${quiet}`), null);
    await page.click('#list button.switch');
    await page.waitForSelector('#list .live.on');
    await page.waitForSelector(`#task-${quiet}`);
  });

  test('a task page follows its task live and plays its video; a <script> prompt stays text', async () => {
    // 1080p: the upscale keeps it running for a while after its 720p video is there.
    const id = await create({ prompt: '<script>alert(1)</script> a lighthouse at dusk', seconds: 8, resolution: '1080p' });
    // Opened while the task is being made: its state and its player arrive over the stream.
    const streamed = page.waitForRequest((r) => r.url().endsWith(`/dashboard/tasks/${id}/stream`));
    await page.goto(`${srv.url}/dashboard/tasks/${id}`);
    await streamed;
    const before = await page.textContent('#t-summary .badge');
    await page.evaluate(() => ((globalThis as any).marker = 7));
    assert.notEqual(before, 'succeeded', 'the page opened before the task ended');
    await page.waitForSelector('#t-summary .state-succeeded', { timeout: 120_000 });
    await page.waitForSelector('#t-outputs video[data-rendition="1080p"]', { timeout: 30_000 });
    assert.equal(await page.evaluate(() => (globalThis as any).marker), 7, `no reload (it was ${before} when opened)`);
    assert.equal(await page.textContent('.prompt-full'), '<script>alert(1)</script> a lighthouse at dusk');
    assert.deepEqual(dialogs, []);
    await page.waitForFunction(() => ((globalThis as any).document.querySelector('video')?.readyState ?? 0) >= 1, undefined, { timeout: 30_000 });
    const played = await page.evaluate(async () => {
      const v = (globalThis as any).document.querySelector('video');
      v.muted = true;
      await v.play();
      const start = v.currentTime;
      await new Promise((r) => setTimeout(r, 1500));
      return { duration: v.duration as number, start: start as number, now: v.currentTime as number };
    });
    assert.ok(played.duration > 0 && Number.isFinite(played.duration), JSON.stringify(played));
    assert.ok(played.now > played.start, `currentTime advances: ${JSON.stringify(played)}`);
    await page.evaluate(() => (globalThis as any).document.querySelector('video').pause());
    await shot('task.png');
  });

  test('Cancel on the page of a long task cancels it', async () => {
    const id = await create({ prompt: 'a long render to cancel', seconds: 8, resolution: '4k' });
    await page.goto(`${srv.url}/dashboard/tasks/${id}`);
    await page.click('button.danger');
    await page.waitForSelector('#t-summary .state-canceled', { timeout: 30_000 });
    assert.equal((await api(KEY, 'GET', `/tasks/${id}`)).state, 'canceled');
    assert.equal(await page.$('button.danger'), null, 'no Cancel on a canceled task');
  });

  test('Resend sends a delivery again with the same webhook-id', async () => {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const id = await create({ prompt: 'call me back', webhook_url: url });
    await until(id, ['succeeded']);
    await waitFor(async () => (hooks.some((h) => h.id.includes(id)) ? true : undefined), 30_000);
    await page.goto(`${srv.url}/dashboard/tasks/${id}`);
    await page.waitForSelector('#t-deliveries .delivery-delivered');
    await page.click('#t-deliveries button[type="submit"]');
    await page.waitForURL(new RegExp(`/dashboard/tasks/${id}$`));
    await waitFor(async () => (hooks.filter((h) => h.id.includes(id)).length >= 2 ? true : undefined), 30_000);
    const ids = hooks.filter((h) => h.id.includes(id)).map((h) => h.id);
    assert.equal(new Set(ids).size, 1, `one webhook-id: ${ids.join(', ')}`);
  });

  test("another tenant's task is not found; the overview draws its charts", async () => {
    const theirs = await create({ prompt: 'not yours' }, OTHER);
    const res = await page.goto(`${srv.url}/dashboard/tasks/${theirs}`);
    assert.equal(res!.status(), 404);
    assert.equal(await page.textContent('h1'), 'Not found');
    await page.goto(`${srv.url}/dashboard/tasks`);
    await page.waitForSelector('#list .live.on');
    await shot('tasks.png');
    await page.goto(`${srv.url}/dashboard`);
    assert.equal(await page.textContent('h1'), 'Overview');
    assert.ok((await page.$$('figure.chart svg rect')).length >= 3);
    await shot('overview.png');
  });
});
