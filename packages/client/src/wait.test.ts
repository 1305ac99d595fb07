import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Reelay } from './client.js';
import { TaskFailedError } from './errors.js';
import type { Task } from './types.js';

const task = (state: Task['state'], extra: Partial<Task> = {}) => ({ id: 'task_1', object: 'task', state, progress: 0, cancel_outcome: null, updated_at: state, error: null, ...extra }) as Task;
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const sse = (...events: string[]) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const e of events) c.enqueue(new TextEncoder().encode(e));
        c.close();
      },
    }),
    { headers: { 'content-type': 'text/event-stream' } },
  );
const event = (t: Task) => `event: task\ndata: ${JSON.stringify(t)}\n\n`;

/** A client whose stream and task reads are answered by `stream` and `poll`; the paths asked, in order. */
function client(stream: (n: number) => Response | Promise<Response>, poll: (n: number) => Response) {
  const asked: string[] = [];
  let streams = 0;
  let polls = 0;
  const reelay = new Reelay({
    baseURL: 'http://reelay.test',
    apiKey: 'sk-test',
    maxRetries: 0,
    fetch: async (input) => {
      const path = new URL(String(input)).pathname;
      asked.push(path);
      return path.endsWith('/stream') ? stream(++streams) : poll(++polls);
    },
  });
  return { reelay, asked };
}

test('without a stream (no answer), wait polls the task until it ends', async () => {
  const states: Task['state'][] = ['generating', 'succeeded'];
  const { reelay, asked } = client(() => Promise.reject(new TypeError('fetch failed')), (n) => json(200, task(states[n - 1]!)));
  const seen: string[] = [];
  const done = await reelay.wait('task_1', { onUpdate: (t) => seen.push(t.state) });
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(seen, ['generating', 'succeeded']);
  assert.deepEqual(asked, ['/reelay/v1/tasks/task_1/stream', '/reelay/v1/tasks/task_1', '/reelay/v1/tasks/task_1/stream', '/reelay/v1/tasks/task_1']);
});

test('a server with no stream route is polled only; one that drops the stream is read again, then followed again', async () => {
  const states: Task['state'][] = ['queued', 'succeeded'];
  const noStream = client(() => json(404, { code: 'not_found', detail: 'GET … does not exist' }), (n) => json(200, task(states[n - 1]!)));
  assert.equal((await noStream.reelay.wait('task_1')).state, 'succeeded');
  assert.equal(noStream.asked.filter((p) => p.endsWith('/stream')).length, 1, 'the stream is not asked again');

  const dropping = client((n) => (n === 1 ? sse(event(task('generating'))) : sse(event(task('generating', { progress: 50, updated_at: 'later' })), event(task('succeeded')), 'event: end\ndata: {}\n\n')), () => json(200, task('generating')));
  const progress: number[] = [];
  const done = await dropping.reelay.wait('task_1', { onUpdate: (t) => progress.push(t.progress) });
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(progress, [0, 50, 0]);
  assert.deepEqual(dropping.asked, ['/reelay/v1/tasks/task_1/stream', '/reelay/v1/tasks/task_1', '/reelay/v1/tasks/task_1/stream']);
});

test('a failure seen on the stream is a TaskFailedError coded by its kind; a throwing onUpdate ends the wait with its error', async () => {
  const failed = task('failed', { error: { kind: 'upstream', stage: 'generation', message: 'the provider failed' } });
  const { reelay } = client(() => sse(event(task('generating')), event(failed)), () => json(200, failed));
  await assert.rejects(reelay.wait('task_1'), (e: TaskFailedError) => e instanceof TaskFailedError && e.code === 'upstream' && e.taskId === 'task_1' && e.task.state === 'failed');
  const oops = new Error('listener broke');
  await assert.rejects(
    reelay.wait('task_1', {
      onUpdate: () => {
        throw oops;
      },
    }),
    (e) => e === oops,
  );
  // A task that has ended already: no request at all.
  const none = client(() => assert.fail('no stream'), () => assert.fail('no poll'));
  assert.equal((await none.reelay.wait(task('succeeded'))).state, 'succeeded');
});
