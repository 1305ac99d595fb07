import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NATIVE_ID, nativeTaskId } from './ids.js';

test('native ids: task_ and 32 hex; made in one millisecond, they sort in the order made; a later millisecond sorts after', () => {
  const same = Array.from({ length: 50 }, () => nativeTaskId(1_770_000_000_000));
  for (const id of same) assert.match(id, NATIVE_ID);
  assert.deepEqual([...same].sort(), same);
  assert.equal(new Set(same).size, same.length);
  const later = nativeTaskId(1_770_000_000_001);
  assert.ok(later > same.at(-1)!);
  assert.notEqual(nativeTaskId(1_770_000_000_002).slice(17), nativeTaskId(1_770_000_000_003).slice(17), 'a new millisecond starts from a new random part');
});
