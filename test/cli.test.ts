import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const cli = (dir: string, ...args: string[]) =>
  execFileSync(process.execPath, [CLI, ...args], { env: { ...process.env, REELAY_DATA_DIR: dir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('first start without keys creates one, prints it once, and it works; keys create|list|revoke', { timeout: 180_000 }, async (t) => {
  const dir = tmpDir();
  const env = { REELAY_DATA_DIR: dir, REELAY_API_KEYS: '' };
  const srv = await startServer(env);
  t.after(() => srv.kill9());
  const first = await waitFor(async () => /\n\s+(sk-[A-Za-z0-9]{48})\n/.exec(srv.output())?.[1]);
  const ask = (key: string) => fetch(`${srv.url}/api/v1/veo/record-info?taskId=x`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.json() as Promise<{ code: number }>);
  assert.equal((await ask(first)).code, 404, 'the printed key authenticates');

  const made = cli(dir, 'keys', 'create', '--name', 'ci').trim();
  assert.match(made, /^sk-[A-Za-z0-9]{48}$/);
  assert.equal((await ask(made)).code, 404, 'a key made by the CLI works on the running server');
  const list = cli(dir, 'keys', 'list');
  assert.ok(list.includes(made.slice(0, 10)), 'list shows the prefix');
  assert.ok(!list.includes(made), 'list never shows a whole key');
  assert.match(list, /\tci\t/);
  assert.match(cli(dir, 'keys', 'revoke', made.slice(0, 10)), /revoked 1/);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await ask(made)).code, 401, 'a revoked key is refused within a second');
  await srv.stop();

  // Keys are stored hashed: neither key is in the database file.
  const db = readFileSync(join(dir, 'reelay.sqlite')).toString('latin1') + readFileSync(join(dir, 'reelay.sqlite-wal'), { flag: 'a+' }).toString('latin1');
  assert.ok(!db.includes(first) && !db.includes(made));

  const again = await startServer(env);
  t.after(() => again.kill9());
  assert.ok(!/sk-[A-Za-z0-9]{48}/.test(again.output()), 'not printed again');
  await again.stop();
});

test('a bad setting is a clear error, not a crash', () => {
  assert.throws(
    () => execFileSync(process.execPath, [CLI, 'serve'], { env: { ...process.env, PORT: 'eighty' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    (e: { status: number; stderr: string }) => e.status === 2 && /PORT must be an integer/.test(e.stderr),
  );
  const dir = tmpDir();
  const cases: [string, RegExp][] = [
    ['{"providers": {"kie": {"type": "kie"}}', /REELAY_CONFIG .*JSON/],
    ['{"providers": {"kie": {"type": "kie", "apiKeyEnv": "REELAY_TEST_UNSET_KEY"}}}', /REELAY_TEST_UNSET_KEY \(apiKeyEnv\) is not set/],
  ];
  for (const [i, [text, message]] of cases.entries()) {
    writeFileSync(join(dir, `bad${i}.json`), text);
    assert.throws(
      () => execFileSync(process.execPath, [CLI, 'serve'], { env: { ...process.env, REELAY_DATA_DIR: dir, REELAY_CONFIG: join(dir, `bad${i}.json`) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
      (e: { status: number; stderr: string }) => e.status === 2 && message.test(e.stderr),
      text,
    );
  }
});
