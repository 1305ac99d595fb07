import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTask } from '../../../test/fixtures.js';
import { STATES } from '../../core/states.js';
import type { Task } from '../../core/task.js';
import { STITCHED_SECONDS, VIDEO_STATUSES, toVideo, videoError, videoProgress, videoSize, videoStatus } from './mapper.js';

const DAY = 86_400_000;
const KEYS = ['completed_at', 'created_at', 'error', 'expires_at', 'id', 'model', 'object', 'progress', 'prompt', 'remixed_from_video_id', 'seconds', 'size', 'status'];

test('every state, with every failure stage, maps to one of the four statuses and an integer progress 0–100', () => {
  for (const state of STATES) {
    for (const failureStage of [null, 'input', 'generation', 'upsample'] as const) {
      for (const [attemptCount, progress] of [[0, 0], [1, 50], [3, 100], [9, 140]] as const) {
        const task = makeTask({ state, failureStage, attemptCount, progress });
        assert.ok(VIDEO_STATUSES.includes(videoStatus(task)), `${state}/${failureStage}`);
        const p = videoProgress(task);
        assert.ok(Number.isInteger(p) && p >= 0 && p <= 100, `${state}: ${p}`);
        assert.deepEqual(Object.keys(toVideo(task, DAY)).sort(), KEYS);
      }
    }
  }
});

test('the status of each state', () => {
  const want: Record<string, string> = {
    queued: 'queued',
    fetching: 'queued',
    generating: 'in_progress',
    generated: 'in_progress',
    upsampling: 'in_progress',
    succeeded: 'completed',
    failed: 'failed',
  };
  for (const [state, status] of Object.entries(want)) assert.equal(videoStatus(makeTask({ state: state as never, failureStage: state === 'failed' ? 'generation' : null })), status);
  // An expired task keeps the word it ended with.
  assert.equal(videoStatus(makeTask({ state: 'expired' })), 'completed');
  assert.equal(videoStatus(makeTask({ state: 'expired', failureStage: 'input' })), 'failed');
});

/** A lifecycle as the engine writes it, in order. */
function walk(steps: Partial<Task>[]): number[] {
  let task = makeTask();
  return steps.map((s) => videoProgress((task = { ...task, ...s })));
}

test('progress never goes down: through upsampling, resubmissions and a failover', () => {
  const seen = walk([
    { state: 'queued' },
    { state: 'fetching' },
    { state: 'generating', upstreamId: null },
    { upstreamId: 'a', attemptCount: 1, progress: 0 },
    { progress: 50 },
    { progress: 99 },
    // The job failed retryably: resubmitted, the provider's progress starts again.
    { upstreamId: null },
    { upstreamId: 'b', attemptCount: 2, progress: 0 },
    { progress: 40 },
    { upstreamId: 'c', attemptCount: 3, progress: 0 },
    { progress: 95 },
    { upstreamId: 'd', attemptCount: 4, progress: 100 },
    { state: 'generated', progress: 90 },
    { state: 'upsampling' },
    { state: 'succeeded', progress: 100 },
    { state: 'expired' },
  ]);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `step ${i}: ${seen.join(' ')}`);
  assert.equal(seen[0], 0);
  assert.equal(seen.at(-2), 100);
  assert.ok(seen[5]! > seen[3]!, 'a running job moves the number');
});

test('a failure keeps the progress of the stage it happened in', () => {
  const cases: [Partial<Task>, Task['failureStage']][] = [
    [{ state: 'queued' }, 'input'],
    [{ state: 'fetching' }, 'input'],
    [{ state: 'queued' }, 'generation'],
    [{ state: 'generating', attemptCount: 2, progress: 80 }, 'generation'],
    [{ state: 'generated', attemptCount: 1, progress: 90 }, 'upsample'],
    [{ state: 'upsampling', attemptCount: 1, progress: 90 }, 'upsample'],
  ];
  for (const [before, failureStage] of cases) {
    const [running, failed, expired] = walk([before, { state: 'failed', failureStage }, { state: 'expired' }]);
    assert.ok(failed! >= running!, `${before.state} → failed: ${running} → ${failed}`);
    assert.equal(expired, failed);
  }
});

test('size: the exact frame, else aspect and final resolution (tasks of every door)', () => {
  const spec = (s: object) => ({ aspectRatio: '16:9' as const, resolution: '720p' as const, upsample: false, ...s });
  assert.equal(videoSize(spec({})), '1280x720');
  assert.equal(videoSize(spec({ aspectRatio: '9:16' })), '720x1280');
  assert.equal(videoSize(spec({ aspectRatio: 'auto' })), '1280x720');
  assert.equal(videoSize(spec({ upsample: true, resolution: '1080p' })), '1920x1080');
  assert.equal(videoSize(spec({ aspectRatio: '9:16', upsample: true, resolution: '4k' })), '2160x3840');
  // kkiai keeps resolution 720p without upsample; a 1080p resolution without upsample is made at 720p.
  assert.equal(videoSize(spec({ resolution: '1080p' })), '1280x720');
  assert.equal(videoSize(spec({ aspectRatio: '9:16', upsample: true, resolution: '1080p', frame: { width: 1024, height: 1792 } })), '1024x1792');
});

test('a completed video: unix seconds, expires_at = completed + retention, error null', () => {
  const task = makeTask(
    { id: 'video_x', model: 'sora-2', state: 'succeeded', progress: 100, createdAt: 1_770_000_000_900, completedAt: 1_770_000_060_500, lastError: 'a retry on the way', lastErrorKind: 'upstream', request: { prompt: 'p' } },
    { prompt: 'A calico cat', durationSeconds: 4, aspectRatio: '9:16' },
  );
  assert.deepEqual(toVideo(task, 14 * DAY), {
    id: 'video_x',
    object: 'video',
    model: 'sora-2',
    status: 'completed',
    progress: 100,
    created_at: 1_770_000_000,
    completed_at: 1_770_000_060,
    expires_at: 1_770_000_060 + 14 * 86_400,
    error: null,
    prompt: 'A calico cat',
    remixed_from_video_id: null,
    seconds: '4',
    size: '720x1280',
  });
});

test('a queued video has null completed_at and expires_at; a remix names its source; an extension shows the stitched total', () => {
  const request = { prompt: 'p', remixed_from_video_id: 'video_src', [STITCHED_SECONDS]: '12' };
  const v = toVideo(makeTask({ dialect: 'openai', request }, { durationSeconds: 4 }), DAY);
  assert.equal(v.status, 'queued');
  assert.equal(v.completed_at, null);
  assert.equal(v.expires_at, null);
  assert.equal(v.remixed_from_video_id, 'video_src');
  assert.equal(v.seconds, '12');
  // A kie or kkiai task: seconds from its duration; its client's body holds no notes of this door.
  const kkiai = toVideo(makeTask({ dialect: 'kkiai', request }, { durationSeconds: 8 }), DAY);
  assert.equal(kkiai.seconds, '8');
  assert.equal(kkiai.remixed_from_video_id, null);
});

test('error codes of failed videos', () => {
  const failed = (lastErrorKind: Task['lastErrorKind'], lastError: string | null = null, failureStage: Task['failureStage'] = 'generation') =>
    videoError(makeTask({ state: 'failed', failureStage, lastErrorKind, lastError, completedAt: 1 }));
  assert.deepEqual(failed('content_policy', 'unsafe prompt'), { code: 'moderation_blocked', message: 'unsafe prompt' });
  assert.equal(failed('image_fetch', 'Failed to fetch the image: 404', 'input')?.code, 'image_fetch_failed');
  assert.equal(failed('timeout', 'deadline passed while generating')?.code, 'timeout');
  assert.equal(failed('upstream', 'boom')?.code, 'generation_failed');
  assert.equal(failed('internal', 'disk full', 'upsample')?.code, 'internal_error');
  assert.equal(failed(null)?.code, 'generation_failed');
  assert.match(failed('content_policy')!.message, /moderation/);
  // A failed video's tombstone keeps its error; a failed one has no expires_at.
  const gone = toVideo(makeTask({ state: 'expired', failureStage: 'generation', lastErrorKind: 'upstream', lastError: 'boom', completedAt: 1_000 }), DAY);
  assert.equal(gone.status, 'failed');
  assert.deepEqual(gone.error, { code: 'generation_failed', message: 'boom' });
  assert.equal(gone.expires_at, null);
  assert.equal(gone.completed_at, 1);
});

test('an expired completed video: completed, expires_at in the past', () => {
  const v = toVideo(makeTask({ state: 'expired', completedAt: Date.now() - 15 * DAY }), 14 * DAY);
  assert.equal(v.status, 'completed');
  assert.equal(v.progress, 100);
  assert.ok(v.expires_at! < Date.now() / 1000);
  assert.equal(v.error, null);
});
