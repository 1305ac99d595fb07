import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KIE_SEED_TYPES, makeTask, typesOf } from '../../../test/fixtures.js';
import type { ErrorKind } from '../../core/states.js';
import { errorCode, kieTime, successFlag, toCallback, toRecord } from './mapper.js';

const urls = { video: 'http://r/files/t/video.mp4', upsampled: null, hd1080: null, uhd: null, uhdThumbnail: null, final: 'http://r/files/t/video.mp4' };
const none = { video: null, upsampled: null, hd1080: null, uhd: null, uhdThumbnail: null, final: null };

test('successFlag: 0 while running, 1 success, 2 failed before generation, 3 generation failed', () => {
  for (const state of ['queued', 'fetching', 'generating', 'generated', 'upsampling'] as const) {
    assert.equal(successFlag(makeTask({ state })), 0, state);
  }
  assert.equal(successFlag(makeTask({ state: 'succeeded' })), 1);
  assert.equal(successFlag(makeTask({ state: 'failed', failureStage: 'input' })), 2);
  assert.equal(successFlag(makeTask({ state: 'failed', failureStage: 'generation' })), 3);
  assert.equal(successFlag(makeTask({ state: 'failed', failureStage: 'upsample' })), 3);
});

test('errorCode follows kie record codes for every error kind', () => {
  const want: Record<Exclude<ErrorKind, 'canceled'>, number> = { content_policy: 400, image_fetch: 400, timeout: 500, internal: 500, upstream: 501 };
  for (const [kind, code] of Object.entries(want)) {
    assert.equal(errorCode(makeTask({ state: 'failed', failureStage: 'generation', lastErrorKind: kind as ErrorKind })), code, kind);
  }
  assert.equal(errorCode(makeTask({ state: 'succeeded', lastErrorKind: 'upstream', lastError: 'old' })), null, 'a success has no error code');
});

test('a canceled task is an end without a video in kie words: successFlag 2, errorCode 400, a message saying so', () => {
  for (const failureStage of ['input', 'generation', 'upsample'] as const) {
    const task = makeTask({ state: 'canceled', failureStage, lastErrorKind: 'canceled', lastError: 'Canceled by the client', cancelOutcome: 'upstream_canceled', completedAt: 1_770_350_328_994 });
    const rec = toRecord(task, urls);
    assert.equal(rec.successFlag, 2, failureStage);
    assert.equal(rec.errorCode, 400);
    assert.equal(rec.errorMessage, 'The task was canceled by the client.');
    assert.equal(rec.response, null);
    assert.equal(rec.completeTime, '2026-02-06 03:58:48');
    assert.deepEqual(toCallback(task, urls), { code: 400, msg: 'The task was canceled by the client.', data: { taskId: task.id, fallbackFlag: false } });
  }
});

test('record of a succeeded task has every seed field with the seed types', () => {
  const task = makeTask({ state: 'succeeded', completedAt: 1_770_350_328_994, dialect: 'kie', request: { prompt: 'p', waterMark: 'KieAI' } });
  const rec = toRecord(task, urls);
  assert.deepEqual(typesOf(rec as never, KIE_SEED_TYPES), []);
  assert.equal(rec.successFlag, 1);
  assert.deepEqual(rec.response?.resultUrls, [urls.final]);
  assert.equal(rec.response?.resolution, '720p');
  assert.deepEqual(JSON.parse(rec.paramJson), { prompt: 'p', waterMark: 'KieAI' });
  assert.equal(rec.createTime, '2026-02-06 03:54:42');
  assert.equal(rec.completeTime, '2026-02-06 03:58:48');
  assert.equal(rec.errorMessage, '');
});

test('record of a running and of a failed task', () => {
  const running = toRecord(makeTask({ state: 'generating' }), none);
  assert.equal(running.response, null);
  assert.equal(running.completeTime, null);
  assert.equal(running.errorCode, null);
  const failed = toRecord(makeTask({ state: 'failed', failureStage: 'generation', lastErrorKind: 'content_policy', lastError: 'unsafe' }), none);
  assert.equal(failed.successFlag, 3);
  assert.equal(failed.errorCode, 400);
  assert.match(failed.errorMessage, /violating content policies/);
});

test('resolution reports the upsampled size', () => {
  const task = makeTask({ state: 'succeeded' }, { upsample: true, resolution: '1080p' });
  const rec = toRecord(task, { ...urls, upsampled: 'http://r/files/t/video-1080p.mp4', final: 'http://r/files/t/video-1080p.mp4', uhd: null, uhdThumbnail: null });
  assert.equal(rec.response?.resolution, '1080p');
  assert.deepEqual(rec.response?.resultUrls, ['http://r/files/t/video-1080p.mp4']);
});

test('callback bodies for success and failure', () => {
  const ok = toCallback(makeTask({ id: 'abc', state: 'succeeded' }), urls);
  assert.deepEqual(ok, {
    code: 200,
    msg: 'Veo3.1 video generated successfully.',
    data: { taskId: 'abc', info: { resultUrls: [urls.final], originUrls: null, resolution: '720p' }, fallbackFlag: false },
  });
  const bad = toCallback(makeTask({ id: 'abc', state: 'failed', failureStage: 'generation', lastErrorKind: 'timeout', lastError: 'Timeout: too slow' }), none);
  assert.deepEqual(bad, { code: 500, msg: 'Timeout: too slow', data: { taskId: 'abc', fallbackFlag: false } });
});

test('kieTime formats UTC as YYYY-MM-DD HH:mm:ss', () => {
  assert.equal(kieTime(Date.UTC(2025, 5, 6, 10, 30, 0)), '2025-06-06 10:30:00');
  assert.equal(kieTime(null), null);
});

test('fallbackFlag is true when a fallback route made the video, in the record and the callback', () => {
  const urls = { video: 'http://r/v.mp4', upsampled: null, hd1080: null, uhd: null, uhdThumbnail: null, final: 'http://r/v.mp4' };
  const task = makeTask({ dialect: 'kie', state: 'succeeded', completedAt: 1, fallback: true });
  assert.equal(toRecord(task, urls).fallbackFlag, true);
  assert.equal((toCallback(task, urls).data as { fallbackFlag: boolean }).fallbackFlag, true);
  assert.equal(toRecord(makeTask({ dialect: 'kie', state: 'succeeded', completedAt: 1 }), urls).fallbackFlag, false);
});
