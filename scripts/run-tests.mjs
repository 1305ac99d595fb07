// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
// Usage: node scripts/run-tests.mjs [substring…]   (only files whose path contains one of them)
//
// The store tests need PostgreSQL: this starts one throwaway cluster for the run (dist/test/pg.js)
// and hands it to the test processes (REELAY_TEST_PG_URL and the rest of `clusterEnv`); each test
// makes its own database in it. The cluster is stopped and its folder removed when the run ends,
// however it ends (SIGINT, SIGTERM; a watchdog process covers SIGKILL). With REELAY_TEST_PG_URL set
// already, that server is used instead. Without PostgreSQL binaries those tests are skipped, unless
// REELAY_TEST_REQUIRE_PG is set (CI): then they fail.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const { nodeSupported, unsupportedNodeMessage } = await import(pathToFileURL('dist/src/node-version.js').href);
if (!nodeSupported()) {
  console.error(unsupportedNodeMessage());
  process.exit(2);
}

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find('dist')
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

let cluster;
let child;
const stopCluster = () => {
  const c = cluster;
  cluster = undefined;
  c?.stop();
};
process.on('exit', stopCluster);
// A terminal's Ctrl-C reaches the test runner too (never the server: pg_ctl starts it in a session
// of its own); a signal sent to this process alone is passed on. Either way the cluster stops once
// the runner has ended, or at once on a second signal. Registered before the cluster starts, so a
// signal during its start waits for it and then stops it.
let signalled = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (++signalled > 1 || !child) {
      child?.kill('SIGKILL');
      process.exit(128 + constants.signals[sig]);
    }
    child.kill(sig);
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

// Only a run with a file that asks for a database (imports test/pg.js) pays for a cluster.
const wantsPg = files.some((f) => /from '(?:\.\.?\/)+(?:test\/)?pg\.js'/.test(readFileSync(f, 'utf8')));
const env = { ...process.env };
if (wantsPg && !env.REELAY_TEST_PG_URL) {
  const required = !!env.REELAY_TEST_REQUIRE_PG && env.REELAY_TEST_REQUIRE_PG !== '0';
  const started = Date.now();
  try {
    const { startCluster, clusterEnv } = await import(pathToFileURL('dist/test/pg.js').href);
    cluster = startCluster();
    Object.assign(env, clusterEnv(cluster));
    console.log(`PostgreSQL test cluster started in ${Date.now() - started} ms: ${cluster.dir}`);
  } catch (e) {
    const what = required ? 'the PostgreSQL tests will FAIL (REELAY_TEST_REQUIRE_PG is set)' : 'the PostgreSQL tests are skipped';
    console.error(`No PostgreSQL test cluster, ${what}:\n${e instanceof Error ? e.message : e}`);
  }
}

child = spawn(process.execPath, ['--test', '--test-force-exit', '--test-reporter=spec', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env,
});
child.on('error', (e) => {
  console.error(e);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  stopCluster();
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
