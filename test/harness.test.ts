import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServer } from './server.js';
import { tmpDir } from './tmp.js';

test('a server that does not start in time is killed before startServer throws', async () => {
  // A routing file that is a FIFO with no writer: the server blocks reading it, alive but silent.
  const dir = tmpDir();
  const fifo = join(dir, 'reelay.json');
  execFileSync('mkfifo', [fifo]);
  const err = await startServer({ REELAY_DATA_DIR: dir, REELAY_CONFIG: fifo }, undefined, 1_500).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'the start failed');
  assert.match(err.message, /did not start within 1\.5 s/);
  const pid = Number(/pid (\d+)/.exec(err.message)?.[1]);
  assert.ok(pid > 0);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone');
});
