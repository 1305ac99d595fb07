import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, startServer } from './server.js';
import { tmpDir } from './tmp.js';

// A start that crashes now and then (as better-sqlite3 12 did on Node 24.19–24.21, aborting in a
// garbage collection at start about one start in two) fails this, on whichever Node runs the suite.
test('reelay serve starts, serves and drains cleanly, eight times in a row on fresh data', { timeout: 180_000 }, async (t) => {
  for (let i = 0; i < 8; i++) {
    const srv = await startServer({ REELAY_DATA_DIR: tmpDir(), REELAY_API_KEYS: '', LOG_LEVEL: 'info' });
    t.after(() => srv.kill9());
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    await sleep(500); // the first turns after start, where the collections that aborted it ran
    assert.equal(srv.child.exitCode, null, `start ${i + 1} is still running: ${srv.output()}`);
    await srv.stop();
    assert.equal(srv.child.exitCode, 0, `start ${i + 1} exited ${srv.child.exitCode ?? srv.child.signalCode}: ${srv.output()}`);
  }
});
