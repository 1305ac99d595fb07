import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const oldNode = process.env.REELAY_TEST_OLD_NODE;

// .ci/run sets REELAY_TEST_OLD_NODE to a Node 20.18 binary from the npm registry (there, Fastify's
// dependencies cannot load: `require()` of an ES module needs 20.19).
test(
  'an unsupported Node gets one clear line and exit code 2, not a stack trace from a dependency',
  { skip: oldNode ? false : 'REELAY_TEST_OLD_NODE is not set (a Node older than 20.19)' },
  () => {
    const version = spawnSync(oldNode!, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    for (const argv of [['serve'], ['keys', 'list']]) {
      const res = spawnSync(oldNode!, [CLI, ...argv], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, REELAY_DATA_DIR: tmpDir(), PORT: '0' },
      });
      assert.equal(res.status, 2, `${argv.join(' ')}: ${res.stderr}`);
      assert.equal(
        res.stderr,
        `reelay: Node.js ^20.19.0 || >=22.12.0 is needed, and this is ${version}. See "Node versions" in the README.\n`,
      );
      assert.doesNotMatch(res.stderr, /ERR_REQUIRE_ESM|at /);
    }
  },
);
