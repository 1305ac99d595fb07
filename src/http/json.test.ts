import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_JSON_DEPTH, jsonDepth } from './json.js';

const nested = (levels: number) => '{"x":'.repeat(levels) + '1' + '}'.repeat(levels);

test('jsonDepth counts nested objects and arrays, not brackets inside strings, and stops past the limit', () => {
  assert.equal(jsonDepth('1'), 0);
  assert.equal(jsonDepth('{"prompt":"a"}'), 1);
  assert.equal(jsonDepth('{"a":[1,{"b":[]}],"c":{}}'), 4);
  assert.equal(jsonDepth('{"p":"[[[{{{ not nesting \\" [[[ still in the string"}'), 1);
  assert.equal(jsonDepth('{"p":"a backslash at the end \\\\"}'), 1);
  assert.equal(jsonDepth(nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH);
  assert.equal(jsonDepth(nested(10_000)), MAX_JSON_DEPTH + 1, 'stops counting once past the limit');
  assert.equal(jsonDepth(nested(100), 10), 11);
});
