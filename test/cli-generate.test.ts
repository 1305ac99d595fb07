import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { probeMp4 } from '../src/media/mp4.js';
import { type ServerProcess, startServer, track, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const KEY = 'sk-cli-generate-key';
/** util-linux `script` gives the CLI a pseudo-terminal, as a person's shell does. */
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A 1×1 PNG, as a file a person passes with --image. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64');

describe('reelay generate and reelay tasks: the CLI as a real process against a real gateway', () => {
  let srv: ServerProcess;
  let dir: string;
  const running = new Set<ChildProcess>();

  before(async () => {
    dir = tmpDir();
    srv = await startServer({ REELAY_DATA_DIR: join(dir, 'data'), REELAY_API_KEYS: KEY });
  });
  after(async () => {
    for (const c of running) c.kill('SIGKILL');
    await srv?.stop();
  });

  const env = (extra: Record<string, string> = {}) => ({ ...process.env, REELAY_URL: srv.url, REELAY_API_KEY: KEY, ...extra });

  /** Runs the CLI off a terminal (pipes); `during` may act on it while it runs. Killed after `timeoutMs`, whatever happens. */
  const cli = (args: string[], opts: { env?: Record<string, string>; during?: (child: ChildProcess, out: () => Ran) => Promise<void>; timeoutMs?: number } = {}): Promise<Ran> => {
    const child = track(spawn(process.execPath, [CLI, ...args], { cwd: dir, env: env(opts.env), stdio: ['ignore', 'pipe', 'pipe'] }));
    running.add(child);
    const ran: Ran = { code: null, stdout: '', stderr: '' };
    child.stdout!.on('data', (d: Buffer) => (ran.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (ran.stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    const exited = new Promise<Ran>((resolve) =>
      child.on('close', (code, signal) => {
        clearTimeout(killer);
        running.delete(child);
        // Killed by a signal it did not handle: no exit code (never taken for one the CLI chose).
        resolve({ ...ran, code: code ?? (signal ? -1 : null) });
      }),
    );
    if (opts.during) void opts.during(child, () => ran).catch(() => child.kill('SIGKILL'));
    return exited;
  };
  /** Runs the CLI on a pseudo-terminal; `keys` are typed into it (bytes, with a pause before each). */
  const onTty = (args: string[], keys: { afterMs?: number; until?: RegExp; bytes: string }[] = []): Promise<Ran> => {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = track(spawn(SCRIPT!, ['-qfec', `${command}`, '/dev/null'], { cwd: dir, env: { ...env(), TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] }));
    running.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    void (async () => {
      for (const k of keys) {
        if (k.until) await waitFor(async () => (k.until!.test(out) ? true : undefined), 60_000, 50);
        await new Promise((r) => setTimeout(r, k.afterMs ?? 0));
        child.stdin!.write(k.bytes);
      }
    })().catch(() => child.kill('SIGKILL'));
    return new Promise((resolve) =>
      child.on('close', (code) => {
        clearTimeout(killer);
        running.delete(child);
        child.stdin!.destroy();
        resolve({ code, stdout: out, stderr: '' });
      }),
    );
  };
  const api = async (method: string, path: string) => {
    const res = await fetch(`${srv.url}/reelay/v1${path}`, { method, headers: { authorization: `Bearer ${KEY}` } });
    return (await res.json()) as { id: string; state: string; cancel_outcome: string | null; data?: { id: string; prompt: string }[] };
  };
  const idOf = (r: Ran) => /^task (task_[0-9a-f]{32}) /m.exec(r.stderr || r.stdout)?.[1];

  test('off a terminal: the task id first, one line per change, the MP4 written, and only its path on stdout', async () => {
    const out = join(dir, 'lighthouse.mp4');
    const r = await cli(['generate', 'a lighthouse at dusk', '--seconds', '4', '--aspect', '9:16', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${out}\n`, 'stdout carries the path alone');
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0]!, /^task task_[0-9a-f]{32} \(veo3\.1-fast, 4 s, 720p, 9:16\)$/, 'the id comes first');
    assert.ok(lines.some((l) => /^\[\s*\d+s\] generating \d+%$/.test(l)), r.stderr);
    assert.match(lines.at(-2)!, /^\[\s*\d+s\] succeeded 100%$/);
    assert.doesNotMatch(r.stderr, /\x1b\[/, 'no terminal codes in a pipe');
    const p = probeMp4(out);
    assert.deepEqual([p?.video?.codec, p?.video?.width, p?.video?.height], ['h264', 720, 1280]);
    assert.ok(Math.abs(p!.video!.durationMs - 4000) < 200, `${p!.video!.durationMs} ms`);
    assert.equal((await api('GET', `/tasks/${idOf(r)}`)).state, 'succeeded');
  });

  test('--json prints what "reelay tasks get --json" prints; an input image is sent from a file', async () => {
    const png = join(dir, 'first.png');
    writeFileSync(png, PNG);
    const r = await cli(['generate', 'from a first frame', '--image', png, '--seconds', '4', '--json', '-o', join(dir, 'framed.mp4')]);
    assert.equal(r.code, 0, r.stderr);
    const task = JSON.parse(r.stdout) as { id: string; state: string; images: number };
    assert.deepEqual([task.state, task.images], ['succeeded', 1]);
    const got = await cli(['tasks', 'get', task.id, '--json']);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(JSON.parse(got.stdout), task);
    assert.ok(probeMp4(join(dir, 'framed.mp4'))?.video);
    const missing = await cli(['generate', 'p', '--image', join(dir, 'nope.png')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--image .*nope\.png: no such file/);
  });

  test('on a terminal: a progress bar that redraws in place, then the path', { skip: SCRIPT ? false : 'no util-linux script for a pseudo-terminal' }, async () => {
    const out = join(dir, 'tty.mp4');
    const r = await onTty(['generate', 'a harbor on a terminal', '--seconds', '4', '-o', out]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /task task_[0-9a-f]{32} /);
    assert.match(r.stdout, /\x1b\[1G(queued|generating) +\|[█░]{30}\| \d+% \| \d+s/, 'a bar drawn with cursor moves');
    assert.match(r.stdout, /succeeded +\|█{30}\| 100%/);
    assert.match(r.stdout, new RegExp(`${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r?\\n`));
    assert.ok(probeMp4(out)?.video);
  });

  test('exit codes: safety rejection 3, bad input 2, a wrong key 2, timeout 4 (the task runs on), canceled 5', async () => {
    const safety = await cli(['generate', 'something nsfw', '--seconds', '4', '--json']);
    assert.equal(safety.code, 3, safety.stderr);
    assert.equal((JSON.parse(safety.stdout) as { error: { kind: string } }).error.kind, 'content_policy', '--json still prints the failed task');
    assert.match(safety.stderr, /^task task_/);

    const seconds = await cli(['generate', 'p', '--seconds', '5']);
    assert.equal(seconds.code, 2);
    assert.match(seconds.stderr, /--seconds.*5.*(4|choices)/i);
    assert.equal(seconds.stdout, '');
    const noKey = await cli(['generate', 'p'], { env: { REELAY_API_KEY: '' } });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /REELAY_API_KEY/);
    const wrongKey = await cli(['tasks', 'list'], { env: { REELAY_API_KEY: 'sk-wrong' } });
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.stderr, /invalid API key/i);

    const timedOut = await cli(['generate', 'a long 4k render that outlasts the wait', '--seconds', '8', '--hd', '4k', '--timeout', '2s']);
    assert.equal(timedOut.code, 4, timedOut.stderr);
    const slow = idOf(timedOut)!;
    assert.match(timedOut.stderr, /keeps running/);
    assert.notEqual((await api('GET', `/tasks/${slow}`)).state, 'succeeded');
    await api('POST', `/tasks/${slow}/cancel`);

    const canceled = await cli(['generate', 'a long 4k render canceled from elsewhere', '--seconds', '8', '--hd', '4k'], {
      during: async (_child, out) => {
        const id = await waitFor(async () => idOf(out()), 60_000, 50);
        await waitFor(async () => (/generating/.test(out().stderr) ? true : undefined), 60_000, 50);
        await api('POST', `/tasks/${id}/cancel`);
      },
    });
    assert.equal(canceled.code, 5, canceled.stderr);
    assert.match(canceled.stderr, /canceled/);
  });

  test('Ctrl-C with --detach leaves the task running (130); the same command again follows the same task, and pays once', async () => {
    // The derived key holds within the hour: two runs across its turn would be two requests.
    const intoHour = Date.now() % 3_600_000;
    if (intoHour > 3_600_000 - 60_000) await new Promise((r) => setTimeout(r, 3_600_000 - intoHour + 1000));
    const args = ['generate', 'an interrupted lighthouse', '--seconds', '4', '--hd', '1080p', '--detach', '-o', join(dir, 'again.mp4')];
    const first = await cli(args, {
      during: async (child, out) => {
        await waitFor(async () => idOf(out()), 60_000, 50);
        child.kill('SIGINT');
      },
    });
    assert.equal(first.code, 130, first.stderr);
    const id = idOf(first)!;
    assert.match(first.stderr, new RegExp(`task ${id} is still running: "reelay tasks wait ${id}"`));
    assert.notEqual((await api('GET', `/tasks/${id}`)).state, 'canceled');
    const second = await cli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(idOf(second), id, 'the same task');
    assert.match(second.stderr, /the same command made this task/);
    const list = await api('GET', '/tasks?limit=100');
    assert.equal(list.data!.filter((t) => t.prompt === 'an interrupted lighthouse').length, 1, 'one task for both runs');
    const fresh = await cli([...args, '--new', '--no-wait']);
    assert.equal(fresh.code, 0);
    assert.notEqual(fresh.stdout.trim(), id, '--new makes another');
    await api('POST', `/tasks/${fresh.stdout.trim()}/cancel`);
  });

  test('Ctrl-C on a terminal asks; "y" cancels the task (130)', { skip: SCRIPT ? false : 'no util-linux script for a pseudo-terminal' }, async () => {
    const r = await onTty(['generate', 'a long render stopped at the keyboard', '--seconds', '8', '--hd', '4k'], [
      { until: /generating/, afterMs: 200, bytes: '\x03' },
      { until: /Cancel task task_[0-9a-f]{32}\? \[y\/N\]/, bytes: 'y\r' },
    ]);
    assert.equal(r.code, 130, r.stdout);
    const id = /task (task_[0-9a-f]{32}) /.exec(r.stdout)![1]!;
    assert.match(r.stdout, new RegExp(`task ${id} canceled`));
    assert.equal((await api('GET', `/tasks/${id}`)).state, 'canceled');
  });

  test('a create refused for the key\'s rate exits 6 with nothing made', async (t) => {
    const limited = await startServer({ REELAY_DATA_DIR: join(dir, 'limited'), REELAY_API_KEYS: KEY, REELAY_KEY_CREATES_PER_MINUTE: '1' });
    t.after(() => limited.stop());
    const first = await cli(['generate', 'the one allowed', '--no-wait'], { env: { REELAY_URL: limited.url } });
    assert.equal(first.code, 0, first.stderr);
    const refused = await cli(['generate', 'one too many', '--no-wait'], { env: { REELAY_URL: limited.url } });
    assert.equal(refused.code, 6, refused.stderr);
    assert.equal(refused.stdout, '');
    const tasks = (await (await fetch(`${limited.url}/reelay/v1/tasks`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { data: { prompt: string }[] };
    assert.deepEqual(tasks.data.map((x) => x.prompt), ['the one allowed']);
  });

  test('Ctrl-C on a terminal, then Ctrl-C at the question: the task is left running (130)', { skip: SCRIPT ? false : 'no util-linux script for a pseudo-terminal' }, async () => {
    const r = await onTty(['generate', 'a long render left running at the keyboard', '--seconds', '8', '--hd', '4k'], [
      { until: /generating/, afterMs: 200, bytes: '\x03' },
      { until: /Cancel task task_[0-9a-f]{32}\? \[y\/N\]/, bytes: '\x03' },
    ]);
    assert.equal(r.code, 130, r.stdout);
    const id = /task (task_[0-9a-f]{32}) /.exec(r.stdout)![1]!;
    assert.match(r.stdout, new RegExp(`task ${id} is still running`));
    assert.notEqual((await api('GET', `/tasks/${id}`)).state, 'canceled');
    await api('POST', `/tasks/${id}/cancel`);
  });

  test('tasks list|get|wait|events|download|cancel and credits', async () => {
    const made = await cli(['generate', 'listed and fetched', '--seconds', '4', '--no-wait']);
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    assert.match(id, /^task_[0-9a-f]{32}$/);
    const waited = await cli(['tasks', 'wait', id, '-o', join(dir, 'waited.mp4')]);
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(waited.stdout, `${join(dir, 'waited.mp4')}\n`);
    const list = await cli(['tasks', 'list', '--state', 'succeeded', '--limit', '50']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^id\tstate\tmodel\tprovider\tage\n/);
    assert.match(list.stdout, new RegExp(`^${id}\\tsucceeded\\tveo3\\.1-fast\\tlocal\\t\\d+s$`, 'm'));
    assert.doesNotMatch(list.stdout, /\tcanceled\t/, 'the filter ran');
    const json = JSON.parse((await cli(['tasks', 'list', '--limit', '2', '--json'])).stdout) as unknown[];
    assert.equal(json.length, 2);
    const events = JSON.parse((await cli(['tasks', 'events', id, '--json'])).stdout) as { kind: string; to: string | null }[];
    assert.equal(events[0]!.kind, 'created');
    assert.ok(events.some((e) => e.to === 'succeeded'));
    const nowhere = await cli(['tasks', 'download', id, '-o', join(dir, 'no-such-folder', 'x.mp4')]);
    assert.equal(nowhere.code, 2, nowhere.stderr);
    assert.match(nowhere.stderr, /could not be written/);
    const dl = await cli(['tasks', 'download', id, '-o', join(dir, 'downloaded.mp4')]);
    assert.equal(dl.code, 0, dl.stderr);
    assert.deepEqual(readFileSync(join(dir, 'downloaded.mp4')), readFileSync(join(dir, 'waited.mp4')));
    const late = await cli(['tasks', 'cancel', id]);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /had already ended \(succeeded\)/);
    const unknown = await cli(['tasks', 'get', 'task_00000000000000000000000000000000']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no task/);
    const credits = await cli(['credits']);
    assert.equal(credits.code, 0, credits.stderr);
    assert.match(credits.stdout, /not metered/);
    execFileSync(process.execPath, [CLI, 'keys', 'credit', KEY.slice(0, 10), '25', '--note', 'cli test'], { env: { ...process.env, REELAY_DATA_DIR: join(dir, 'data') }, stdio: 'pipe' });
    const topped = JSON.parse((await cli(['credits', '--json'])).stdout) as { balance: { credits: number }; ledger: { kind: string; note: string }[] };
    assert.equal(topped.balance.credits, 25);
    assert.deepEqual([topped.ledger[0]!.kind, topped.ledger[0]!.note], ['topup', 'cli test']);
  });
});
