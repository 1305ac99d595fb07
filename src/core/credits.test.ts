import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTask } from '../../test/fixtures.js';
import { REFUND_ALL, chargeOf, closingOf } from './credits.js';

const price = { perSecond: 10, perSecondAt: { '4k': 30 }, extendPerSecond: 4 };

test('chargeOf: per second of the resolution asked, extensions their own item, rounded up; free without a price', () => {
  assert.deepEqual(chargeOf(price, { resolution: '720p', durationSeconds: 8 }), { credits: 80, perSecond: 10, item: 'video' });
  assert.deepEqual(chargeOf(price, { resolution: '1080p', durationSeconds: 6 }), { credits: 60, perSecond: 10, item: 'video' }, 'no 1080p price: the base one');
  assert.deepEqual(chargeOf(price, { resolution: '4k', durationSeconds: 8 }), { credits: 240, perSecond: 30, item: 'video' });
  assert.deepEqual(chargeOf(price, { resolution: '4k', durationSeconds: 7, video: 'task:x' }), { credits: 28, perSecond: 4, item: 'extend' });
  assert.deepEqual(chargeOf({ perSecond: 0.35 }, { resolution: '720p', durationSeconds: 8 }), { credits: 3, perSecond: 0.35, item: 'video' });
  assert.equal(chargeOf(undefined, { resolution: '720p', durationSeconds: 8 }), undefined);
  assert.equal(chargeOf({ perSecond: 0 }, { resolution: '720p', durationSeconds: 8 }), undefined);
});

test('closingOf: a success settles to the seconds made, a failure refunds by its kind, a cancel by what it stopped', () => {
  const charge = { credits: 80, perSecond: 10, item: 'video' as const };
  const running = makeTask({ id: 'c', state: 'generating', charge });
  const video = (ms: number) => [{ kind: 'video', durationMs: ms }];
  const close = (patch: Parameters<typeof closingOf>[1], task = running, policy = REFUND_ALL, artifacts?: { kind: string; durationMs: number | null }[]) => {
    const c = closingOf(task, patch, artifacts, policy, 5);
    return c && [c.kind, c.amount, c.charged, c.reason];
  };
  assert.deepEqual(close({ state: 'succeeded' }, running, REFUND_ALL, video(8021)), ['settle', 0, 80, 'succeeded'], 'a few ms over is the same second');
  assert.deepEqual(close({ state: 'succeeded' }, running, REFUND_ALL, video(5000)), ['settle', 30, 50, 'succeeded'], 'a shorter video costs its seconds');
  assert.deepEqual(close({ state: 'succeeded' }, running, REFUND_ALL, video(12_000)), ['settle', 0, 80, 'succeeded'], 'never more than was reserved');
  assert.deepEqual(close({ state: 'succeeded' }), ['settle', 0, 80, 'succeeded'], 'no duration known: what was reserved');
  assert.deepEqual(close({ state: 'failed', lastErrorKind: 'content_policy' }), ['refund', 80, 0, 'content_policy']);
  assert.deepEqual(close({ state: 'failed', lastErrorKind: 'timeout' }, running, { ...REFUND_ALL, timeout: false }), ['settle', 0, 80, 'timeout']);
  assert.deepEqual(close({ state: 'failed', lastErrorKind: 'upstream' }, running, { ...REFUND_ALL, failed: false }), ['settle', 0, 80, 'upstream']);
  assert.deepEqual(close({ state: 'failed', lastErrorKind: 'upstream' }), ['refund', 80, 0, 'upstream']);
  assert.equal(close({ progress: 40 } as never), undefined, 'a step that does not end the task');
  assert.equal(close({ state: 'succeeded' }, { ...running, charge: null }), undefined, 'a free task');
  assert.equal(close({ state: 'succeeded' }, { ...running, state: 'succeeded' }), undefined, 'a rendition after success closes nothing');
  const canceled = { ...running, state: 'canceled' as const, cancelOutcome: 'pending' as const };
  assert.deepEqual(close({ cancelOutcome: 'not_submitted' }, canceled), ['refund', 80, 0, 'canceled: not_submitted']);
  assert.deepEqual(close({ cancelOutcome: 'upstream_canceled' }, canceled), ['refund', 80, 0, 'canceled: upstream_canceled']);
  assert.deepEqual(close({ cancelOutcome: 'upstream_uncancelable' }, canceled), ['settle', 0, 80, 'canceled: upstream_uncancelable'], 'the job ran on upstream');
  assert.deepEqual(close({ cancelOutcome: 'not_submitted' }, canceled, { ...REFUND_ALL, canceled: false }), ['settle', 0, 80, 'canceled: not_submitted']);
  assert.equal(close({ nextRunAt: 9 } as never, canceled), undefined, 'the cancel step, retried: not yet');
  assert.equal(close({ cancelOutcome: 'not_submitted' }, { ...canceled, cancelOutcome: 'not_submitted' }), undefined, 'already stopped');
});

test('closingOf: a rendition asked for after success closes its own item when it is stored or fails, priced or not', () => {
  const done = makeTask({ id: 'r', state: 'succeeded', charge: null });
  const close = (task: Parameters<typeof closingOf>[0], patch: Parameters<typeof closingOf>[1], policy = REFUND_ALL) => {
    const c = closingOf(task, patch, undefined, policy, 5);
    return c && [c.item, c.kind, c.amount, c.charged];
  };
  assert.deepEqual(close({ ...done, uhdState: 'pending' }, { uhdState: 'ready' }), ['uhd', 'settle', undefined, undefined], 'kept: the store knows what it reserved');
  assert.deepEqual(close({ ...done, hdState: 'pending' }, { hdState: 'failed' }), ['hd', 'refund', undefined, undefined]);
  assert.deepEqual(close({ ...done, hdState: 'pending' }, { hdState: 'failed' }, { ...REFUND_ALL, failed: false }), ['hd', 'settle', undefined, undefined]);
  assert.equal(close({ ...done, hdState: 'pending' }, { nextRunAt: 9 } as never), undefined, 'still being made');
  assert.equal(close({ ...done, hdState: 'ready' }, { hdState: 'ready' }), undefined, 'made before');
});
