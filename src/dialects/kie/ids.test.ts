import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kieTaskId } from './ids.js';

test('kie task ids: 32 lowercase hex, unique, and in the order they were made', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => kieTaskId(1_770_350_082_000 + i));
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, 'a later millisecond sorts later');
  // Within one millisecond the random part still makes each id unique.
  const same = Array.from({ length: 1000 }, () => kieTaskId(1_770_350_082_000));
  assert.equal(new Set(same).size, same.length);
  assert.match(kieTaskId(), /^[0-9a-f]{32}$/);
});
