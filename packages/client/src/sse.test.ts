import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readEvents } from './sse.js';

const stream = (chunks: string[]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (const s of chunks) c.enqueue(new TextEncoder().encode(s));
      c.close();
    },
  });

test('events are read whatever the chunks and the line ends; comments and retry are skipped', async () => {
  const events = [];
  for await (const e of readEvents(stream(['retry: 2000\n\n: still here\n\nid: 1\nevent: ta', 'sk\ndata: {"a":1}\r', '\n\r\nevent: end\r\ndata: x\r\ndata: y\r\r', 'data: no name\n\n', 'event: dangling\ndata: unfinished']))) events.push(e);
  assert.deepEqual(events, [
    { event: 'task', data: '{"a":1}', id: '1' },
    { event: 'end', data: 'x\ny' },
    { event: 'message', data: 'no name' },
  ]);
});
