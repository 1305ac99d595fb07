import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KKIAI_ID, kkiaiTaskId } from './ids.js';

test('kkiai task ids keep the seed shape', () => {
  assert.match(kkiaiTaskId('veo3.1-fast', 1_770_350_082_099), KKIAI_ID);
});
