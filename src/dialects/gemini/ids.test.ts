import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileIdOf, geminiTaskId, taskIdOfFile } from './ids.js';

test('file ids: lowercase [a-z0-9] for every door\'s task id, and reversible', () => {
  const ids = [geminiTaskId(), '0123456789abcdef0123456789abcdef', 'video_0190a1b2c3d4e5f60718293a4b5c6d7e', 'veo3.1-fast:1770350082-trii1OXZc3', 'x1', 'é'];
  for (const id of ids) {
    const file = fileIdOf(id);
    assert.match(file, /^[a-z0-9]+$/, id);
    // What @google/genai's files.download keeps of a uri's id: the first run of [a-z0-9].
    assert.equal(/[a-z0-9]+/.exec(file)![0], file, id);
    assert.equal(taskIdOfFile(file), id);
  }
  assert.equal(fileIdOf(ids[0]!), ids[0], 'this door\'s ids are their own file ids');
  assert.equal(taskIdOfFile('x1'), undefined, 'odd hex');
  assert.equal(taskIdOfFile('AbC'), undefined);
  assert.equal(taskIdOfFile('%E0%A4%A'), undefined);
});
