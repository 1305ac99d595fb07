import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KKIAI_SEED_TYPES, makeTask, typesOf } from '../../../test/fixtures.js';
import { STATES } from '../../core/states.js';
import { KKIAI_STATUSES, kkiaiStatus, toCreated, toQuery } from './mapper.js';

test('every internal state maps to a kkiai status from the published vocabulary', () => {
  for (const state of STATES) {
    for (const failureStage of ['input', 'generation', 'upsample'] as const) {
      const s = kkiaiStatus(makeTask({ state, failureStage }));
      assert.ok(KKIAI_STATUSES.includes(s), `${state}/${failureStage} -> ${s}`);
    }
  }
});

test('the status walks the reference vocabulary', () => {
  const want = {
    queued: 'pending',
    fetching: 'image_downloading',
    generating: 'video_generating',
    generated: 'video_generation_completed',
    upsampling: 'video_upsampling',
    succeeded: 'completed',
  } as const;
  for (const [state, status] of Object.entries(want)) assert.equal(kkiaiStatus(makeTask({ state: state as never })), status);
  assert.equal(kkiaiStatus(makeTask({ state: 'failed', failureStage: 'generation' })), 'video_generation_failed');
  assert.equal(kkiaiStatus(makeTask({ state: 'failed', failureStage: 'upsample' })), 'video_upsampling_failed');
  assert.equal(kkiaiStatus(makeTask({ state: 'failed', failureStage: 'input' })), 'failed');
});

test('a completed, upsampled task has every seed field with the seed types; video_url is the upsampled one', () => {
  const task = makeTask(
    {
      state: 'succeeded',
      upstreamId: '608c00e8de85d8856554201ae115b7c2',
      completedAt: 1_770_350_328_994,
      updatedAt: 1_770_350_329_098,
      retryCount: 3,
      lastError: '[403] reCAPTCHA evaluation failed',
      lastErrorKind: 'upstream',
      images: [{ url: 'https://x/y.png', status: 'completed', mediaId: 'CAMaJ' }],
      enhancedPrompt: 'make animate. Wide establishing shot.',
    },
    { upsample: true, resolution: '1080p', images: ['https://x/y.png'], mode: 'frames' },
  );
  const q = toQuery(task, { video: 'http://r/v.mp4', upsampled: 'http://r/v-1080p.mp4', hd1080: 'http://r/v-1080p.mp4', uhd: null, uhdThumbnail: null, final: 'http://r/v-1080p.mp4' });
  assert.deepEqual(typesOf(q as never, KKIAI_SEED_TYPES), []);
  assert.equal(q.status, 'completed');
  assert.equal(q.video_url, 'http://r/v-1080p.mp4');
  assert.equal(q.detail.video_url, 'http://r/v.mp4');
  assert.equal(q.detail.upsample_video_url, 'http://r/v-1080p.mp4');
  assert.equal(q.detail.running, false);
  assert.equal(q.detail.retry_count, 3);
  assert.equal(q.detail.error_message, '[403] reCAPTCHA evaluation failed', 'the last error stays after a success');
  assert.equal(q.detail.video_generation_status, 'MEDIA_GENERATION_STATUS_SUCCESSFUL');
  assert.equal(q.detail.upsample_status, 'MEDIA_GENERATION_STATUS_SUCCESSFUL');
  assert.equal(q.detail.upsample_generation_id, '608c00e8de85d8856554201ae115b7c2_upsampled');
  assert.equal(q.detail.startImageMediaId, 'CAMaJ');
  assert.deepEqual(q.detail.images, [{ url: 'https://x/y.png', status: 'completed', mediaId: 'CAMaJ' }]);
});

test('a pending task has video_url null and running true', () => {
  const q = toQuery(makeTask({ state: 'queued' }), { video: null, upsampled: null, hd1080: null, uhd: null, uhdThumbnail: null, final: null });
  assert.equal(q.video_url, null);
  assert.equal(q.detail.running, true);
  assert.equal(q.detail.completed_at, null);
  assert.equal(q.detail.video_generation_status, 'MEDIA_GENERATION_STATUS_PENDING');
});

test('a safety rejection fills video_generation_error', () => {
  const q = toQuery(makeTask({ state: 'failed', failureStage: 'generation', lastErrorKind: 'content_policy', lastError: 'unsafe prompt' }), { video: null, upsampled: null, hd1080: null, uhd: null, uhdThumbnail: null, final: null });
  assert.equal(q.status, 'video_generation_failed');
  assert.equal(q.detail.video_generation_error, 'unsafe prompt');
  assert.equal(q.detail.video_generation_status, 'MEDIA_GENERATION_STATUS_FAILED');
  assert.equal(q.detail.needs_safe_enhancement, true);
});

test('create answer', () => {
  assert.deepEqual(toCreated(makeTask()), {
    id: 'veo3.1-fast:1770350082-trii1OXZc3',
    status: 'pending',
    status_update_time: 1_770_350_082_099,
    enhanced_prompt: 'make animate',
  });
});

test('detail.fallback says whether a fallback route made the video', () => {
  const urls = { video: 'http://r/v.mp4', upsampled: null, hd1080: null, uhd: null, uhdThumbnail: null, final: 'http://r/v.mp4' };
  assert.equal(toQuery(makeTask({ state: 'succeeded', fallback: true }), urls).detail.fallback, true);
  assert.equal(toQuery(makeTask({ state: 'succeeded' }), urls).detail.fallback, false);
});
