import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import type { Task } from '../src/core/task.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { freshDatabase, pgSkipReason, runCluster } from './pg.js';
import { type ServerProcess, sleep, startCallbackReceiver, startServer, waitFor } from './server.js';
import { SIM_KEY, startTestSim } from './sim.js';
import { makeTask } from './fixtures.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-slow-db';
/** `REELAY_DATABASE_TIMEOUT_MS` of the server under test. */
const TIMEOUT_MS = 2000;
/**
 * How long a fault lasts: far past the longest an answer may take (`ANSWER_MS`), so an answer that
 * waited for the database to come back cannot pass for one that gave up in time.
 */
const FAULT_MS = 15_000;
/**
 * The longest a request may take while the database is slower than the timeout: a wait for a
 * connection (at most the timeout), a wait for the answer (the timeout and 2 s), and room for a
 * busy 2-core machine.
 */
const ANSWER_MS = 8_000;

type Mode = { kind: 'pass' } | { kind: 'stall' } | { kind: 'delay'; ms: number };

/**
 * A TCP proxy in front of the cluster's unix socket: 127.0.0.1:<port> → `<dir>/.s.PGSQL.<port>`.
 * `stall()` holds every byte either way (the connections stay open, nothing arrives: a network
 * that stopped answering), `delay(ms)` adds latency to each chunk, `pass()` lets everything held
 * through, in order. A side that closes closes the other at once.
 */
class DbProxy {
  private mode: Mode = { kind: 'pass' };
  private readonly pumps = new Set<() => void>();
  private readonly sockets = new Set<Socket>();
  private server?: Server;
  port = 0;

  constructor(private readonly socketPath: string) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.socketPath);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      this.forward(client, upstream);
      this.forward(upstream, client);
    });
    this.server.listen(0, '127.0.0.1');
    await new Promise((r) => this.server!.once('listening', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  stall(): void {
    this.mode = { kind: 'stall' };
  }
  delay(ms: number): void {
    this.mode = { kind: 'delay', ms };
  }
  pass(): void {
    this.mode = { kind: 'pass' };
    for (const pump of this.pumps) pump();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }

  /** Chunks from `from` go to `to` in order, each once its time has come and nothing stalls. */
  private forward(from: Socket, to: Socket): void {
    const queue: { at: number; data: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      clearTimeout(timer);
      timer = undefined;
      if (this.mode.kind === 'stall') return;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.at <= now) to.write(queue.shift()!.data);
      if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - now);
    };
    this.pumps.add(pump);
    from.on('close', () => {
      this.pumps.delete(pump);
      clearTimeout(timer);
    });
    from.on('data', (data: Buffer) => {
      const last = queue.at(-1)?.at ?? 0;
      queue.push({ at: Math.max(last, Date.now() + (this.mode.kind === 'delay' ? this.mode.ms : 0)), data });
      if (queue.length === 1) pump();
    });
  }
}

/** What a request answered, and how long it took; `hung` when it gave none (within 30 s). */
interface Answer {
  status: number;
  body: any;
  ms: number;
  hung?: boolean;
}

/** The server under test, for what a failed call reports. */
let watched: ServerProcess | undefined;

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const started = Date.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text, and the assertions say so
    }
    return { status: res.status, body, ms: Date.now() - started };
  } catch (e) {
    // No answer: what the socket said, and, when the server is gone, how it ended and its last words.
    const cause = e instanceof Error && e.cause instanceof Error ? ` (${e.cause.message})` : '';
    const child = watched?.child;
    const gone = child && (child.exitCode !== null || child.signalCode !== null) ? `; the server exited (${child.exitCode ?? child.signalCode}):\n${watched!.output().slice(-4000)}` : '';
    return { status: 0, body: `${String(e)}${cause}${gone}`, ms: Date.now() - started, hung: true };
  }
}

/**
 * "A slow database: timeouts are clear errors, and nothing is committed twice." A real Reelay
 * process (`serve`, role all) reaches its PostgreSQL database through a proxy in this test
 * process, which can stall the traffic or slow it down; another connection can also hold a lock
 * on `tasks` past the statement timeout. The upstream is a kie simulator in this process, and a
 * callback receiver counts what arrives.
 */
describe('a slow database', { skip: pgSkipReason() }, async () => {
  // Undone last first: the server stops before its database goes away.
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const undo of cleanup.reverse()) await undo();
  });
  const cluster = runCluster()!;
  const directUrl = (await freshDatabase())!;
  const database = /^postgres:\/\/[^/]*\/([^?]+)/.exec(directUrl)![1]!;
  const proxy = new DbProxy(join(cluster.dir, `.s.PGSQL.${cluster.port}`));
  await proxy.start();
  cleanup.push(() => proxy.close());
  const sim = await startTestSim({ durationMs: 1500 });

  // The clients' callback receiver: every POST, by task id.
  const receiver = await startCallbackReceiver();
  cleanup.push(() => receiver.close());
  const callbacks = receiver.byTask;
  const callbackUrl = receiver.url;

  const dir = tmpDir();
  writeFileSync(join(dir, 'reelay.json'), JSON.stringify({
    providers: { sim: { type: 'kie', baseUrl: sim.url, apiKeyEnv: 'SIM_KEY', typicalSeconds: 0.5, pollMaxSeconds: 1, timeoutSeconds: 3 } },
    models: [{ match: '*', routes: [{ provider: 'sim' }] }],
  }));
  const srv = await startServer({
    REELAY_DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/${database}`,
    REELAY_DATABASE_TIMEOUT_MS: String(TIMEOUT_MS),
    REELAY_DATA_DIR: dir,
    REELAY_API_KEYS: KEY,
    REELAY_CONFIG: join(dir, 'reelay.json'),
    REELAY_URL_ALLOWLIST: '127.0.0.1',
    REELAY_LEASE_MS: '4000',
    REELAY_ERROR_SLEEP_MS: '200',
    REELAY_MAX_RETRIES: '8',
    REELAY_CALLBACK_BACKOFF_MS: '200',
    REELAY_CALLBACK_MAX_ATTEMPTS: '30',
    REELAY_CALLBACK_TIMEOUT_MS: '2000',
    SIM_KEY,
  });
  watched = srv;
  cleanup.push(async () => {
    proxy.pass();
    await srv.stop();
  });
  // The test reads and locks the database directly, never through the proxy.
  const store = openPostgresStore(directUrl, { max: 2 });
  cleanup.push(() => store.close());
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

  const kieCreate = (prompt: string) => call(`${srv.url}/api/v1/veo/generate`, { method: 'POST', headers, body: JSON.stringify({ prompt, callBackUrl: callbackUrl }) });
  const kiePoll = (id: string) => call(`${srv.url}/api/v1/veo/record-info?taskId=${id}`, { headers });
  const openaiCreate = (prompt: string) => call(`${srv.url}/v1/videos`, { method: 'POST', headers, body: JSON.stringify({ prompt }) });
  const openaiGet = (id: string) => call(`${srv.url}/v1/videos/${id}`, { headers });

  /** Holds an exclusive lock on `tasks` for `ms`, from a connection of its own; resolves once it holds. */
  async function lockTasks(ms: number): Promise<{ released: Promise<void> }> {
    const c = new pg.Client({ connectionString: directUrl });
    c.on('error', () => {});
    await c.connect();
    await c.query('BEGIN');
    await c.query('LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE');
    // Wrapped: an async function returning the promise itself would wait for it.
    return { released: sleep(ms).then(() => c.query('ROLLBACK')).then(() => c.end()) };
  }

  /** The answers a user gets while the database is slower than the timeout: each door's error envelope, in time. */
  function assertTimedOut(what: string, a: Answer, door: 'kie' | 'openai'): void {
    assert.ok(!a.hung, `${what}: no answer (${a.body}) after ${a.ms} ms`);
    assert.ok(a.ms < ANSWER_MS, `${what}: answered after ${a.ms} ms: ${JSON.stringify(a.body)}\n${srv.output().split('\n').slice(-20).join('\n')}`);
    const text = JSON.stringify(a.body);
    assert.doesNotMatch(text, /\bat .*\.js:\d+|statement_timeout|PostgreSQL|pg_|stack/i, `${what}: nothing internal in the answer: ${text}`);
    if (door === 'kie') {
      // kie documents an HTTP 500 with its envelope for a server error.
      assert.equal(a.status, 500, `${what}: ${text}`);
      assert.deepEqual(Object.keys(a.body).sort(), ['code', 'data', 'msg'], `${what}: ${text}`);
      assert.equal(a.body.code, 500);
      assert.equal(a.body.data, null);
      assert.ok(typeof a.body.msg === 'string' && a.body.msg.length > 0);
    } else {
      assert.ok(a.status >= 500 && a.status < 600, `${what}: ${text}`);
      assert.equal(a.body.error?.type, 'server_error', `${what}: ${text}`);
      assert.ok(typeof a.body.error?.message === 'string' && a.body.error.message.length > 0);
    }
  }

  async function assertFast(what: string): Promise<void> {
    const created = await kieCreate(`${what}: fast again`);
    assert.equal(created.body.code, 200, `${what}: create after the fault: ${JSON.stringify(created.body)}`);
    const polled = await kiePoll(created.body.data.taskId);
    assert.equal(polled.body.code, 200, `${what}: poll after the fault: ${JSON.stringify(polled.body)}`);
  }

  test('a lock on tasks held past the timeout: creates and polls answer a clear error in time; the server stays up', { timeout: 120_000 }, async () => {
    const made = await kieCreate('made before the lock');
    const oa = await openaiCreate('made before the lock (openai)');
    assert.equal(made.body.code, 200);
    assert.equal(oa.status, 200);
    const { released } = await lockTasks(FAULT_MS);
    try {
      const answers = await Promise.all([kieCreate('under the lock'), kiePoll(made.body.data.taskId), openaiCreate('under the lock'), openaiGet(oa.body.id)]);
      assertTimedOut('kie create', answers[0], 'kie');
      assertTimedOut('kie record-info', answers[1], 'kie');
      assertTimedOut('openai create', answers[2], 'openai');
      assertTimedOut('openai retrieve', answers[3], 'openai');
      console.log(`slow-db lock: answered in ${answers.map((a) => a.ms).join(', ')} ms (kie create, kie record-info, openai create, openai retrieve)`);
      assert.equal((await call(`${srv.url}/healthz`)).status, 200, 'the process is up');
      // The log says what happened, in words.
      assert.match(srv.output(), /ran longer than statement_timeout \(2000 ms\)/);
    } finally {
      await released;
    }
    await assertFast('lock');
  });

  test('a stalled network: creates and polls answer a clear error in time, /readyz says 503 and then 200', { timeout: 120_000 }, async () => {
    const made = await kieCreate('made before the stall');
    assert.equal(made.body.code, 200);
    proxy.stall();
    const stalledAt = Date.now();
    try {
      // The two creates may share a statement: with no answer, it is not run again create by
      // create (it may have been applied), so they answer within the one wait.
      const answers = await Promise.all([kieCreate('in the stall'), kiePoll(made.body.data.taskId), openaiCreate('in the stall')]);
      assertTimedOut('kie create', answers[0], 'kie');
      assertTimedOut('kie record-info', answers[1], 'kie');
      assertTimedOut('openai create', answers[2], 'openai');
      const ready = await call(`${srv.url}/readyz`);
      console.log(`slow-db stall: answered in ${answers.map((a) => a.ms).join(', ')} ms (kie create, kie record-info, openai create), /readyz in ${ready.ms} ms`);
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.equal(ready.body.database.ok, false);
      assert.match(ready.body.database.error, /no answer within 2 s/);
      assert.equal(ready.body.storage.ok, true);
      assert.equal((await call(`${srv.url}/healthz`)).status, 200, 'the process is up');
      assert.ok(Date.now() - stalledAt < FAULT_MS, 'all of it while the network was still stalled');
    } finally {
      await sleep(Math.max(0, FAULT_MS - (Date.now() - stalledAt)));
      proxy.pass();
    }
    const back = await waitFor(async () => {
      const r = await call(`${srv.url}/readyz`);
      return r.status === 200 ? r : undefined;
    }, 30_000, 200);
    assert.equal(back.body.database.ok, true);
    await assertFast('stall');
  });

  test('the engine through a lock, a stall and latency past the timeout: every task ends once, nothing is committed twice', { timeout: 240_000 }, async () => {
    // Tasks arrive before and between the faults; their jobs take from 0.5 to 5 s, so submits,
    // polls, downloads and the final commits with their callbacks fall inside the faults.
    const ids: string[] = [];
    const prompts = new Map<string, string>();
    let made = 0;
    const createSome = async (n: number) => {
      for (let i = 0; i < n; i++, made++) {
        const prompt = `[sim:takes=${500 + ((made * 700) % 4500)}] slow database task ${made}`;
        const r = await kieCreate(prompt);
        assert.equal(r.body.code, 200, `create ${made}: ${JSON.stringify(r.body)}`);
        ids.push(r.body.data.taskId);
        prompts.set(r.body.data.taskId, prompt);
        await sleep(100);
      }
    };
    const windows: { kind: string; from: number; to: number }[] = [];
    const fault = async (kind: string, start: () => Promise<() => Promise<void>>, ms: number) => {
      const from = Date.now();
      const end = await start();
      await sleep(ms);
      await end();
      windows.push({ kind, from, to: Date.now() });
    };
    const FAULT = 3 * TIMEOUT_MS;
    const logFrom = srv.output().length;
    await createSome(8);
    await fault('lock', async () => {
      const { released } = await lockTasks(FAULT);
      return () => released;
    }, 0);
    await createSome(8);
    await fault('stall', async () => {
      proxy.stall();
      return async () => proxy.pass();
    }, FAULT);
    await createSome(8);
    // Each way 3 s: a round trip (6 s) outlasts the client's wait for an answer (the statement
    // timeout and 2 s), while the server does apply what it receives.
    await fault('latency', async () => {
      proxy.delay(TIMEOUT_MS * 1.5);
      return async () => proxy.pass();
    }, FAULT + TIMEOUT_MS);
    await createSome(4);

    const tenant = (await store.listKeys())[0]!.tenantId;
    let last: (Task | undefined)[] = [];
    const ended = await waitFor(async () => {
      last = await Promise.all(ids.map((id) => store.getTask(tenant, id).catch(() => undefined)));
      return last.every((t) => t && (t.state === 'succeeded' || t.state === 'failed')) ? (last as Task[]) : undefined;
    }, 120_000, 500).catch((e: Error) => {
      const states = last.map((t) => t?.state ?? 'missing');
      throw new Error(`${e.message}: ${JSON.stringify(states)}\n${srv.output().split('\n').slice(-30).join('\n')}`);
    });
    // Callbacks still on their way (a delivery whose result could not be recorded is sent again).
    await sleep(3000);

    const jobs = [...sim.jobs.all()];
    // A job the upstream accepted just before a fault began has its commit fail in the fault.
    const inFault = (at: number) => windows.some((w) => at >= w.from - (TIMEOUT_MS + 3000) && at <= w.to + 1000);
    const figures = { tasks: ids.length, unrecordedJobs: 0, repeatedCallbacks: 0, commitFailures: (srv.output().slice(logFrom).match(/commit failed/g) ?? []).length };
    for (const t of ended) {
      assert.equal(t.state, 'succeeded', `${t.id}: ${t.lastError}`);
      const attempts = await store.listAttempts(t.id);
      const submitted = attempts.filter((a) => a.outcome === 'submitted');
      const what = `${t.id}: ${JSON.stringify(attempts.map((a) => [a.n, a.step, a.outcome, a.upstreamId]))}`;
      assert.equal(attempts.filter((a) => a.outcome === 'succeeded').length, 1, `one success: ${what}`);
      assert.equal(new Set(submitted.map((a) => a.upstreamId)).size, submitted.length, `no job recorded twice: ${what}`);
      // Every recorded submission is a job the upstream accepted for this task, once.
      const mine = jobs.filter((j) => j.prompt === prompts.get(t.id));
      for (const a of submitted) assert.ok(mine.some((j) => j.id === a.upstreamId), `${a.upstreamId} is a job of the upstream: ${what}`);
      // A job with no record: its submit's commit met a fault (no kie idempotency key); never otherwise.
      for (const j of mine.filter((j) => !submitted.some((a) => a.upstreamId === j.id))) {
        assert.ok(inFault(j.createdAt), `an unrecorded job outside every fault (${new Date(j.createdAt).toISOString()}): ${what}`);
        figures.unrecordedJobs++;
      }
      // One callback owed, delivered; every copy that arrived is that one body. A copy arrives
      // again only when the result of sending it could not be recorded: at most once per fault.
      const deliveries = await store.listDeliveries(t.id);
      assert.equal(deliveries.length, 1, `one delivery: ${JSON.stringify(deliveries)}`);
      assert.equal(deliveries[0]!.status, 'delivered');
      const got = callbacks.get(t.id) ?? [];
      assert.ok(got.length >= 1, `${t.id}: no callback`);
      assert.equal(new Set(got).size, 1, `${t.id}: callbacks differ`);
      assert.ok(got.length <= 1 + windows.length, `${t.id}: ${got.length} callbacks`);
      figures.repeatedCallbacks += got.length - 1;
    }
    console.log(`slow-db engine: ${JSON.stringify({ ...figures, windows: windows.map((w) => `${w.kind} ${w.to - w.from} ms`) })}`);
    assert.ok(figures.commitFailures > 0, 'the engine\'s commits met the faults');
  });

  // The hazard a client-side answer timeout brings: a group of commits (one statement) reaches
  // the server and is applied, but its answer comes too late. Run again commit by commit, while
  // the engine still holds the leases, each commit would be applied a second time.
  test('commits whose answer is lost are applied once, not again', { timeout: 120_000 }, async () => {
    const url = (await freshDatabase())!;
    const name = /^postgres:\/\/[^/]*\/([^?]+)/.exec(url)![1]!;
    const direct = openPostgresStore(url, { max: 2 });
    const lossy = new DbProxy(join(cluster.dir, `.s.PGSQL.${cluster.port}`));
    await lossy.start();
    const slow = openPostgresStore(`postgres://postgres@127.0.0.1:${lossy.port}/${name}`, { statementTimeoutMs: TIMEOUT_MS, max: 20 });
    try {
      await direct.migrate();
      const now = Date.now();
      for (let i = 0; i < 10; i++) await direct.createTask(makeTask({ id: `lost${i}`, tenantId: 't', fileToken: `fl${i}`, nextRunAt: now - 1000 }));
      const claimed = await slow.claimDue('engine-a', Date.now(), 120_000, 10);
      assert.equal(claimed.length, 10);
      // Open connections for whatever runs after the group.
      await Promise.all(Array.from({ length: 15 }, () => slow.ping!()));
      // 3 s each way: the statement arrives and is applied after 3 s, its answer would come after
      // 6 s, and the store stops waiting at 4 s (the statement timeout and 2 s).
      lossy.delay(TIMEOUT_MS * 1.5);
      const started = Date.now();
      const answers = await Promise.allSettled(claimed.map((t) => slow.commitStep('engine-a', {
        taskId: t.id,
        patch: { state: 'generating', upstreamId: `job-${t.id}`, progress: 5 },
        keepLease: true,
        attempt: { taskId: t.id, n: 0, provider: 'sim', upstreamId: `job-${t.id}`, step: 'submit', startedAt: now, endedAt: now, outcome: 'submitted', error: null },
      })));
      const took = Date.now() - started;
      lossy.pass();
      assert.ok(took < 3 * (TIMEOUT_MS + 2000), `the commits answered after ${took} ms`);
      for (const a of answers) if (a.status === 'rejected') assert.match(String(a.reason), /had no answer from the database within 4000 ms/);
      // Whatever is still on its way through the proxy arrives and runs.
      await sleep(2 * TIMEOUT_MS * 1.5 + 1000);
      for (const t of claimed) {
        const attempts = await direct.listAttempts(t.id);
        const stored = (await direct.getTask('t', t.id))!;
        assert.ok(attempts.length <= 1, `${t.id}: ${attempts.length} attempts: ${JSON.stringify(attempts.map((a) => [a.n, a.upstreamId]))}`);
        assert.equal(attempts.length, stored.state === 'generating' ? 1 : 0, `${t.id}: the attempt goes with the task's change`);
      }
    } finally {
      await slow.close().catch(() => {});
      await lossy.close();
      await direct.close();
    }
  });
});
