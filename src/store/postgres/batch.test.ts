import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { batched } from './batch.js';

/** An error as the server answers it: a DatabaseError with its SQLSTATE. */
function serverError(code: string, message = `error ${code}`): Error {
  const e = new pg.DatabaseError(message, 0, 'error');
  e.code = code;
  return e;
}

/** A run that records each batch it gets, and answers each item doubled after a turn. */
function recorder(fail?: (items: number[]) => Error | undefined) {
  const batches: number[][] = [];
  let out = 0;
  let maxOut = 0;
  const run = async (items: number[]): Promise<number[]> => {
    batches.push([...items]);
    out++;
    maxOut = Math.max(maxOut, out);
    await new Promise((r) => setTimeout(r, 5));
    out--;
    const e = fail?.(items);
    if (e) throw e;
    return items.map((i) => i * 2);
  };
  return { run, batches, maxOut: () => maxOut };
}

describe('batched calls (store/postgres/batch.ts)', () => {
  test('calls of one turn share a statement, up to max each, and each gets its own answer', async () => {
    const r = recorder();
    const call = batched(r.run, { max: 4, out: 2 });
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => call(i)));
    assert.deepEqual(answers, [2, 4, 6, 8, 10, 12]);
    assert.deepEqual(r.batches, [[1, 2, 3, 4], [5, 6]]);
  });

  test('no more than `out` statements at once; calls made meanwhile go together next', async () => {
    const r = recorder();
    const call = batched(r.run, { max: 2, out: 1 });
    const answers = await Promise.all([1, 2, 3, 4, 5].map((i) => call(i)));
    assert.deepEqual(answers, [2, 4, 6, 8, 10]);
    assert.equal(r.maxOut(), 1);
    assert.deepEqual(r.batches, [[1, 2], [3, 4], [5]]);
  });

  test('a statement refused for its rows runs again item by item: only the bad item fails', async () => {
    // 23505: a unique violation, which item 3 causes wherever it is.
    const r = recorder((items) => (items.includes(3) ? serverError('23505', 'duplicate key') : undefined));
    const call = batched(r.run, { max: 10, out: 2 });
    const answers = await Promise.allSettled([1, 2, 3, 4].map((i) => call(i)));
    assert.deepEqual(answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message)), [2, 4, 'duplicate key', 8]);
    assert.deepEqual(r.batches, [[1, 2, 3, 4], [1], [2], [3], [4]]);
  });

  test('a statement whose answer was lost is not run again: every call rejects with the error', async () => {
    // What db.ts throws when query_timeout passes: the statement may have been applied.
    const lost = new Error('PostgreSQL store: reelay_task_insert had no answer from the database within 4000 ms', { cause: new Error('Query read timeout') });
    const r = recorder(() => lost);
    const call = batched(r.run, { max: 10, out: 2 });
    const answers = await Promise.allSettled([1, 2, 3].map((i) => call(i)));
    assert.deepEqual(answers.map((a) => a.status === 'rejected' && a.reason), [lost, lost, lost]);
    assert.deepEqual(r.batches, [[1, 2, 3]], 'run once, as one statement');
  });

  test('errors shared by every item are not run again item by item: a statement timeout, a broken connection', async () => {
    for (const e of [serverError('57014', 'canceling statement due to statement timeout'), serverError('08006'), new Error('Connection terminated unexpectedly')]) {
      const r = recorder(() => e);
      const call = batched(r.run, { max: 10, out: 2 });
      const answers = await Promise.allSettled([1, 2].map((i) => call(i)));
      assert.ok(answers.every((a) => a.status === 'rejected' && a.reason === e), e.message);
      assert.equal(r.batches.length, 1, e.message);
    }
  });

  test('a wrapped refusal (its cause is the server error) still runs again item by item', async () => {
    const r = recorder((items) => (items.length > 1 ? new Error('PostgreSQL store: insert failed', { cause: serverError('22P02') }) : undefined));
    const call = batched(r.run, { max: 10, out: 2 });
    assert.deepEqual(await Promise.all([1, 2].map((i) => call(i))), [2, 4]);
    assert.deepEqual(r.batches, [[1, 2], [1], [2]]);
  });

  test('joins and order shape a batch: an item that may not join waits for the next, in its place', async () => {
    const r = recorder();
    // Odd and even never share a batch; a batch runs its items in descending order.
    const call = batched(r.run, { max: 10, out: 1, joins: (i, b) => b.length === 0 || b[0]! % 2 === i % 2, order: (a, b) => b - a });
    const answers = await Promise.all([1, 2, 3, 4, 5].map((i) => call(i)));
    assert.deepEqual(answers, [2, 4, 6, 8, 10]);
    assert.deepEqual(r.batches, [[5, 3, 1], [4, 2]]);
  });

  test('items of one key run one at a time, in the order asked, never two in one batch nor two out at once', async () => {
    const log: string[] = [];
    const call = batched(async (items: { key: string; n: number }[]) => {
      for (const i of items) log.push(`start ${i.key}${i.n}`);
      await new Promise((r) => setTimeout(r, 5 * items.length));
      for (const i of items) log.push(`end ${i.key}${i.n}`);
      return items.map((i) => `${i.key}${i.n}`);
    }, { max: 10, out: 4, key: (i) => i.key });
    const asks = [{ key: 'a', n: 1 }, { key: 'b', n: 1 }, { key: 'a', n: 2 }, { key: 'c', n: 1 }, { key: 'a', n: 3 }, { key: 'b', n: 2 }];
    const answers = await Promise.all(asks.map((x) => call(x)));
    assert.deepEqual(answers, ['a1', 'b1', 'a2', 'c1', 'a3', 'b2']);
    // Each key's items start only after the one before it ended.
    for (const key of ['a', 'b']) {
      const mine = log.filter((l) => l.split(' ')[1]!.startsWith(key));
      const expected = asks.filter((x) => x.key === key).flatMap((x) => [`start ${key}${x.n}`, `end ${key}${x.n}`]);
      assert.deepEqual(mine, expected, `${key}: ${log.join(', ')}`);
    }
  });
});
