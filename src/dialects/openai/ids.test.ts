import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VIDEO_ID, videoId } from './ids.js';

test('video ids are video_ + 32 hex and sort by creation time', () => {
  const a = videoId(1_770_350_082_099);
  const b = videoId(1_770_350_082_100);
  assert.match(a, VIDEO_ID);
  assert.ok(a < b);
  assert.equal(a.slice(6, 18), (1_770_350_082_099).toString(16).padStart(12, '0'));
  assert.notEqual(videoId(1), videoId(1));
});
