import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, watch, writeFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestS3 } from '../../test/s3.js';
import { tmpDir } from '../../test/tmp.js';
import { LocalObjectStore, STAGING } from './local.js';
import { openObjectStore, parseStoreSpec, s3OptionsFromEnv } from './open.js';
import { InvalidKeyError, ObjectStoreError, RangeNotSatisfiableError, type ObjectStore } from './port.js';
import { S3ObjectStore, type S3ConnectionOptions } from './s3.js';

const MiB = 1024 * 1024;

/** One implementation under the contract, with what the suite needs to look behind it. */
interface Harness {
  store: ObjectStore;
  /** The same store whose backing is unusable (local: the root is a file; S3: nothing listens), for "before any I/O". */
  broken: ObjectStore;
  /** Puts many small objects fast, behind the store's back (the files in the root; s3rver's folder, see test/s3.ts). */
  seed(keys: string[], body: Buffer): void;
  /** The length of the bytes the backing keeps for a key (the file, or s3rver's object file). */
  storedBytes(key: string): number;
  stop(): Promise<void>;
}

const IMPLEMENTATIONS: { name: 'local' | 's3'; open(): Promise<Harness> }[] = [
  {
    name: 'local',
    async open() {
      const store = await openObjectStore(join(tmpDir('reelay-objects-'), 'results'));
      const brokenRoot = join(tmpDir('reelay-objects-'), 'results');
      const broken = await openObjectStore(brokenRoot);
      rmSync(brokenRoot, { recursive: true });
      writeFileSync(brokenRoot, 'not a folder');
      return {
        store,
        broken,
        seed: (keys, body) => {
          for (const k of keys) {
            mkdirSync(dirname(store.localPath!(k)), { recursive: true });
            writeFileSync(store.localPath!(k), body);
          }
        },
        storedBytes: (key) => statSync(store.localPath!(key)).size,
        stop: async () => {
          await store.close();
          await broken.close();
        },
      };
    },
  },
  {
    name: 's3',
    async open() {
      const s3 = await startTestS3();
      let store: ObjectStore, broken: ObjectStore;
      try {
        const conn: S3ConnectionOptions = { endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials };
        store = await openObjectStore(`s3://${s3.bucket}/reelay/results`, conn);
        broken = await openObjectStore(`s3://${s3.bucket}/reelay/results`, { ...conn, endpoint: `http://127.0.0.1:${await closedPort()}`, maxAttempts: 1 });
      } catch (err) {
        await s3.stop(); // after() has no harness to stop yet
        throw err;
      }
      return {
        store,
        broken,
        seed: (keys, body) => s3.seed(keys.map((k) => `reelay/results/${k}`), body),
        storedBytes: (key) => statSync(join(s3.directory, s3.bucket, `reelay/results/${key}._S3rver_object`)).size,
        stop: async () => {
          await store.close();
          await broken.close();
          await s3.stop();
        },
      };
    },
  },
];

/** A port on 127.0.0.1 where nothing listens (listened on, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as { port: number };
  await new Promise((res) => server.close(res));
  return port;
}

/** A file of `bytes` random bytes in a fresh folder. */
function randomFile(bytes: number): { path: string; data: Buffer } {
  const data = randomBytes(bytes);
  const path = join(tmpDir('reelay-src-'), 'source.bin');
  writeFileSync(path, data);
  return { path, data };
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const impl of IMPLEMENTATIONS) {
  describe(`ObjectStore contract: ${impl.name}`, () => {
    let h: Harness;
    let store: ObjectStore;
    // The 3 MiB object the read tests share.
    let big: Buffer;
    const BIG = 'tasks/ab/abcdef-video.mp4';
    // An expiring presigned URL, signed early so its wait overlaps the other tests.
    let expiring: { url: string; at: number } | undefined;

    before(async () => {
      h = await impl.open();
      store = h.store;
      const src = randomFile(3 * MiB);
      big = src.data;
      await store.putFile(BIG, src.path, { contentType: 'video/mp4' });
      if (store.presign) expiring = { url: await store.presign(BIG, 1), at: Date.now() };
    });
    after(async () => {
      await h?.stop();
    });

    test('kind and the implementation-only methods', () => {
      assert.equal(store.kind, impl.name);
      assert.equal(typeof store.localPath, impl.name === 'local' ? 'function' : 'undefined');
      assert.equal(typeof store.presign, impl.name === 's3' ? 'function' : 'undefined');
    });

    test('keys are checked before any I/O', async () => {
      const bad = ['../x', '/abs', 'a//b', 'a/', '', 'a/./b', 'a/../b', 'a..b', 'a b', 'a\\b', 'vidéo.mp4', 'a?b', `${'k'.repeat(1025)}`];
      const src = randomFile(10);
      for (const s of [h.broken, store]) {
        for (const key of bad) {
          const ops: [string, () => Promise<unknown>][] = [
            ['putFile', () => s.putFile(key, src.path, { contentType: 'text/plain' })],
            ['putStream', () => s.putStream(key, Readable.from([Buffer.from('x')]), { contentType: 'text/plain' })],
            ['getFile', () => s.getFile(key, join(tmpDir(), 'out'))],
            ['read', () => s.read(key)],
            ['head', () => s.head(key)],
            ['delete', () => s.delete(['fine', key])],
            ['deletePrefix', () => s.deletePrefix(key)],
          ];
          if (s.presign) ops.push(['presign', () => s.presign!(key, 60)]);
          for (const [op, run] of ops) {
            if (op === 'deletePrefix' && key === 'a/') continue; // a prefix may end with "/"
            await assert.rejects(run, InvalidKeyError, `${op}(${JSON.stringify(key)})`);
          }
          if (s.localPath) assert.throws(() => s.localPath!(key), InvalidKeyError);
        }
      }
      await assert.rejects(store.deletePrefix(''), InvalidKeyError, 'an empty prefix would delete everything');
      await assert.rejects(store.deletePrefix('a//'), InvalidKeyError);
      assert.ok(existsSync(src.path), 'the source was not moved');
      if (store instanceof LocalObjectStore) {
        // Nothing was written outside the root.
        assert.deepEqual(readdirNames(dirname(store.root)), ['results']);
      }
      // The broken backing is really broken: a valid key reaches it and fails.
      await assert.rejects(h.broken.putStream('fine', Readable.from([Buffer.from('x')]), { contentType: 'text/plain' }), ObjectStoreError);
    });

    test('putFile then getFile: 3 MiB byte for byte, the stored length is the file length', async () => {
      const info = await store.head(BIG);
      assert.ok(info);
      assert.equal(info.bytes, big.length);
      assert.equal(h.storedBytes(BIG), big.length, 'the backing holds exactly the bytes (no aws-chunked framing)');
      assert.equal(info.contentType, 'video/mp4');
      assert.match(info.etag, /^"[^"]+"$/);
      assert.ok(Math.abs(info.lastModified - Date.now()) < 60_000, `lastModified ${info.lastModified}`);
      const out = join(tmpDir(), 'nested', 'copy.mp4');
      assert.equal(await store.getFile(BIG, out), true);
      assert.ok(readFileSync(out).equals(big));
      const whole = await store.read(BIG);
      assert.ok(whole);
      assert.equal(whole.range, undefined);
      assert.equal(whole.etag, info.etag);
      assert.ok((await readAll(whole.body)).equals(big));
      if (store.localPath) assert.ok(readFileSync(store.localPath(BIG)).equals(big), 'localPath is the object, zero copy');
    });

    test('putFile leaves the source, or moves it', async () => {
      const a = randomFile(200_000);
      const kept = await store.putFile('move/kept.bin', a.path, { contentType: 'application/octet-stream' });
      assert.equal(kept.bytes, a.data.length);
      assert.ok(existsSync(a.path), 'without move, the source stays');
      const b = randomFile(300_000);
      const moved = await store.putFile('move/moved.mp4', b.path, { contentType: 'video/mp4', move: true });
      assert.equal(moved.bytes, b.data.length);
      assert.equal(moved.contentType, 'video/mp4');
      assert.ok(!existsSync(b.path), 'with move, the source is gone');
      assert.ok((await readAll((await store.read('move/moved.mp4'))!.body)).equals(b.data));
      assert.ok(Math.abs(moved.lastModified - Date.now()) < 60_000, 'a moved file is dated when stored, not when written');
      // Across volumes (tmpfs) the local store copies, then removes the source.
      if (existsSync('/dev/shm') && store instanceof LocalObjectStore) {
        const dir = mkdtempSync('/dev/shm/reelay-');
        try {
          const c = join(dir, 'c.bin');
          const data = randomBytes(50_000);
          writeFileSync(c, data);
          await store.putFile('move/other-volume.bin', c, { contentType: 'application/octet-stream', move: true });
          assert.ok(!existsSync(c));
          assert.ok(readFileSync(store.localPath!('move/other-volume.bin')).equals(data));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      await assert.rejects(store.putFile('move/none.bin', join(tmpDir(), 'absent'), { contentType: 'text/plain' }), ObjectStoreError);
      await assert.rejects(store.putFile('move/none.bin', join(tmpDir(), 'absent'), { contentType: 'text/plain', move: true }), ObjectStoreError);
      assert.equal(await store.head('move/none.bin'), undefined);
    });

    test('putStream: 12 MiB of unknown length (multipart in S3), byte for byte', async () => {
      const hash = createHash('sha256');
      let total = 0;
      // Uneven chunks, so parts do not line up with them.
      function* chunks() {
        while (total < 12 * MiB) {
          const c = randomBytes(Math.min(12 * MiB - total, 100_003));
          hash.update(c);
          total += c.length;
          yield c;
        }
      }
      const info = await store.putStream('stream/big.mp4', Readable.from(chunks()), { contentType: 'video/mp4' });
      const digest = hash.digest('hex');
      assert.equal(info.bytes, 12 * MiB);
      assert.equal(h.storedBytes('stream/big.mp4'), 12 * MiB);
      assert.equal(info.contentType, 'video/mp4');
      const back = await store.read('stream/big.mp4');
      assert.ok(back);
      assert.equal(sha(await readAll(back.body)), digest);
      const tail = await store.read('stream/big.mp4', { start: 12 * MiB - 5 });
      assert.equal((await readAll(tail!.body)).length, 5);
    });

    test('putStream of a failing stream rejects and keeps the previous object', async () => {
      const before = await store.putStream('stream/keep.txt', Readable.from([Buffer.from('previous')]), { contentType: 'text/plain' });
      for (const failAfter of [1 * MiB, 9 * MiB]) {
        // 9 MiB is past S3's first part: the multipart upload is aborted.
        async function* failing() {
          for (let sent = 0; sent < failAfter; sent += MiB) yield randomBytes(MiB);
          throw new Error('source broke');
        }
        await assert.rejects(store.putStream('stream/keep.txt', Readable.from(failing()), { contentType: 'text/plain' }), /source broke/);
        const now = await store.head('stream/keep.txt');
        assert.equal(now?.etag, before.etag, `after a failure at ${failAfter}`);
        assert.equal((await readAll((await store.read('stream/keep.txt'))!.body)).toString(), 'previous');
      }
      if (store instanceof LocalObjectStore) assert.deepEqual(await readdir(join(store.root, STAGING)), [], 'no staged file is left');
    });

    test('range reads: start-end, open end, clipped end, one byte, past the end', async () => {
      const size = big.length;
      const cases: [{ start: number; end?: number }, number, number][] = [
        [{ start: 100, end: 1123 }, 100, 1123],
        [{ start: 0, end: 0 }, 0, 0],
        [{ start: size - 1, end: size - 1 }, size - 1, size - 1],
        [{ start: size - 10 }, size - 10, size - 1],
        [{ start: 5, end: size + 1000 }, 5, size - 1],
        [{ start: 0 }, 0, size - 1],
      ];
      for (const [range, start, end] of cases) {
        const r = await store.read(BIG, range);
        assert.ok(r, JSON.stringify(range));
        assert.deepEqual(r.range, { start, end, total: size }, JSON.stringify(range));
        assert.ok((await readAll(r.body)).equals(big.subarray(start, end + 1)), JSON.stringify(range));
        assert.equal(r.contentType, 'video/mp4');
      }
      for (const range of [{ start: size }, { start: size + 5, end: size + 10 }]) {
        const err = await store.read(BIG, range).then(
          () => assert.fail(`${JSON.stringify(range)} resolved`),
          (e: unknown) => e,
        );
        assert.ok(err instanceof RangeNotSatisfiableError, String(err));
        assert.equal(err.size, size);
      }
      for (const range of [{ start: -1 }, { start: 5, end: 2 }, { start: 1.5 }]) await assert.rejects(store.read(BIG, range), TypeError);
      assert.equal(await store.read('range/absent.mp4'), undefined);
      assert.equal(await store.read('range/absent.mp4', { start: 0, end: 9 }), undefined);
      // An empty object: whole is fine, any range is unsatisfiable.
      await store.putStream('range/empty.txt', Readable.from([]), { contentType: 'text/plain' });
      const empty = await store.read('range/empty.txt');
      assert.equal(empty?.bytes, 0);
      assert.equal((await readAll(empty!.body)).length, 0);
      await assert.rejects(store.read('range/empty.txt', { start: 0 }), (e: unknown) => e instanceof RangeNotSatisfiableError && e.size === 0);
    });

    test('a destroyed body releases the object (a file descriptor, or a connection)', async () => {
      const r = await store.read('stream/big.mp4');
      assert.ok(r);
      const first = await new Promise<Buffer>((res) => r.body.once('data', res));
      assert.ok(first.length > 0);
      const closed = new Promise<void>((res) => r.body.once('close', () => res()));
      r.body.destroy();
      await closed;
      // The store still answers afterwards.
      assert.equal((await store.head('stream/big.mp4'))?.bytes, 12 * MiB);
    });

    test('head, replace (the ETag changes), delete (absent keys are fine)', async () => {
      assert.equal(await store.head('replace/none.txt'), undefined);
      const one = await store.putStream('replace/x.txt', Readable.from([Buffer.from('first!')]), { contentType: 'text/plain' });
      const two = await store.putStream('replace/x.txt', Readable.from([Buffer.from('second')]), { contentType: 'text/plain' });
      assert.equal(one.bytes, 6);
      assert.equal(two.bytes, 6);
      assert.notEqual(two.etag, one.etag, 'same size, new bytes: a new ETag');
      assert.equal((await store.head('replace/x.txt'))?.etag, two.etag);
      assert.equal((await readAll((await store.read('replace/x.txt'))!.body)).toString(), 'second');
      const same = await store.head('replace/x.txt');
      assert.deepEqual(await store.head('replace/x.txt'), same, 'head is stable');
      await store.delete(['replace/x.txt', 'replace/never-was.txt']);
      assert.equal(await store.head('replace/x.txt'), undefined);
      assert.equal(await store.read('replace/x.txt'), undefined);
      assert.equal(await store.getFile('replace/x.txt', join(tmpDir(), 'x')), false);
      await store.delete([]);
      await store.delete(['replace/x.txt']);
    });

    test('deletePrefix: 1,050 objects and a nested one (S3: two list pages), a string prefix, siblings kept', async () => {
      const keys = Array.from({ length: 1050 }, (_, i) => `bulk/t${String(i).padStart(4, '0')}.txt`);
      const started = Date.now();
      h.seed(keys, Buffer.from('hi'));
      const seeded = Date.now();
      await store.putStream('bulk/sub/deeper/n.txt', Readable.from([Buffer.from('n')]), { contentType: 'text/plain' });
      await store.putStream('bulkier/keep.txt', Readable.from([Buffer.from('k')]), { contentType: 'text/plain' });
      assert.equal((await store.head('bulk/t1049.txt'))?.bytes, 2);
      assert.equal(await store.deletePrefix('bulk/'), 1051);
      const deleted = Date.now();
      for (const k of ['bulk/t0000.txt', 'bulk/t0999.txt', 'bulk/t1000.txt', 'bulk/t1049.txt', 'bulk/sub/deeper/n.txt']) assert.equal(await store.head(k), undefined, k);
      assert.equal((await store.head('bulkier/keep.txt'))?.bytes, 1);
      assert.equal(await store.deletePrefix('bulk/'), 0);
      if (store instanceof LocalObjectStore) assert.ok(!existsSync(join(store.root, 'bulk')), 'the emptied folder is gone');
      // A prefix need not end at a "/": one task's files in a shard folder.
      for (const k of ['ab/abc-video.mp4', 'ab/abc-thumbnail.webp', 'ab/abd-video.mp4']) await store.putStream(k, Readable.from([Buffer.from(k)]), { contentType: 'video/mp4' });
      assert.equal(await store.deletePrefix('ab/abc-'), 2);
      assert.equal(await store.head('ab/abc-video.mp4'), undefined);
      assert.ok(await store.head('ab/abd-video.mp4'));
      assert.equal(await store.deletePrefix('no/such/prefix-'), 0);
      console.log(`# ${impl.name} deletePrefix: seeding 1,050 took ${seeded - started} ms, deleting 1,051 ${deleted - seeded} ms`);
    });

    test('getFile is atomic: a temporary file next to the target, renamed at the end', async () => {
      const dir = tmpDir('reelay-get-');
      const target = join(dir, 'video.mp4');
      writeFileSync(target, 'old contents');
      assert.equal(await store.getFile('range/absent.mp4', target), false);
      assert.equal(readFileSync(target, 'utf8'), 'old contents', 'an absent object leaves the target alone');
      const names = new Set<string>();
      const watcher = watch(dir, (_event, name) => name && names.add(String(name)));
      const sizes = new Set<number>();
      let polling = true;
      const poll = (async () => {
        while (polling) {
          const st = await stat(target).catch(() => undefined);
          if (st) sizes.add(st.size);
          await new Promise((res) => setImmediate(res));
        }
      })();
      try {
        assert.equal(await store.getFile('stream/big.mp4', target), true);
      } finally {
        polling = false;
        await poll;
        await sleep(50); // the last inotify events
        watcher.close();
      }
      assert.equal(statSync(target).size, 12 * MiB);
      for (const s of sizes) assert.ok(s === 12 || s === 12 * MiB, `the target was seen with ${s} bytes`);
      const temps = [...names].filter((n) => n !== 'video.mp4');
      assert.ok(temps.length > 0 && temps.every((n) => n.startsWith('video.mp4.~')), `a temporary file was written next to the target: ${[...names]}`);
      assert.deepEqual(readdirNames(dir), ['video.mp4'], 'and renamed: nothing else is left');
    });

    test('check() is ok for a usable store, and says why for an unusable one', async () => {
      assert.deepEqual(await store.check(2000), { ok: true });
      const started = Date.now();
      const bad = await h.broken.check(1000);
      assert.equal(bad.ok, false);
      assert.ok(Date.now() - started < 1800, `answered in ${Date.now() - started} ms`);
      assert.ok(bad.error?.includes(h.broken.description), bad.error);
      assert.match(bad.error!, impl.name === 'local' ? /ENOTDIR|EEXIST|not a directory/i : /ECONNREFUSED/);
    });

    if (impl.name === 's3') {
      test('presign: fetch gets the bytes, Range gives 206, a download name, an expired URL is 403', async () => {
        const url = await store.presign!(BIG, 60);
        assert.match(url, /X-Amz-Signature=/);
        const whole = await fetch(url);
        assert.equal(whole.status, 200);
        assert.equal(whole.headers.get('content-type'), 'video/mp4');
        assert.ok(Buffer.from(await whole.arrayBuffer()).equals(big));
        const part = await fetch(url, { headers: { range: 'bytes=10-19' } });
        assert.equal(part.status, 206);
        assert.equal(part.headers.get('content-range'), `bytes 10-19/${big.length}`);
        assert.ok(Buffer.from(await part.arrayBuffer()).equals(big.subarray(10, 20)));
        const named = await fetch(await store.presign!(BIG, 60, { downloadName: 'my video.mp4' }));
        await named.arrayBuffer();
        assert.equal(named.headers.get('content-disposition'), `attachment; filename="my video.mp4"; filename*=UTF-8''my%20video.mp4`);
        await assert.rejects(store.presign!(BIG, 0), TypeError);
        await assert.rejects(store.presign!(BIG, 604_801), TypeError);
        // Signed with 1 s in before(); 2 s later it is refused.
        await sleep(Math.max(0, expiring!.at + 2100 - Date.now()));
        const expired = await fetch(expiring!.url);
        await expired.arrayBuffer();
        assert.equal(expired.status, 403);
      });

      test('an endpoint that accepts connections and never answers fails in bounded time', async (t) => {
        const sockets = new Set<Socket>();
        const silent: Server = createServer((s) => void sockets.add(s));
        await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
        t.after(async () => {
          for (const s of sockets) s.destroy();
          await new Promise((res) => silent.close(res));
        });
        const { port } = silent.address() as { port: number };
        const stalled = new S3ObjectStore({ bucket: 'results', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, requestTimeoutMs: 300, maxAttempts: 2 });
        t.after(() => stalled.close());
        let started = Date.now();
        const err = await stalled.head('x.txt').then(
          () => assert.fail('resolved'),
          (e: unknown) => e,
        );
        const took = Date.now() - started;
        assert.ok(err instanceof ObjectStoreError, String(err));
        assert.match(err.message, /s3 head s3:\/\/results\/x\.txt: .*300 ms/);
        assert.ok(took < 2500, `failed after ${took} ms`);
        started = Date.now();
        const check = await stalled.check(500);
        assert.equal(check.ok, false);
        assert.match(check.error!, /no answer within 500 ms/);
        assert.ok(Date.now() - started < 1200, `check answered in ${Date.now() - started} ms`);
      });
    }
  });
}

describe('openObjectStore settings', () => {
  test('parseStoreSpec', () => {
    assert.deepEqual(parseStoreSpec('s3://my-bucket/some/prefix'), { kind: 's3', bucket: 'my-bucket', prefix: 'some/prefix/' });
    assert.deepEqual(parseStoreSpec('s3://my-bucket/some/prefix/'), { kind: 's3', bucket: 'my-bucket', prefix: 'some/prefix/' });
    assert.deepEqual(parseStoreSpec('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseStoreSpec('s3://my-bucket/'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseStoreSpec('/var/lib/reelay/results'), { kind: 'local', root: '/var/lib/reelay/results' });
    assert.deepEqual(parseStoreSpec('data/results', '/srv'), { kind: 'local', root: '/srv/data/results' });
    assert.deepEqual(parseStoreSpec('file:///srv/results'), { kind: 'local', root: '/srv/results' });
    for (const bad of ['', 's3://', 's3://UPPER/x', 's3://b/x', 's3://bucket/a/../b', 's3://bucket/a?x=1', 's3://bucket/a//b', 'gs://bucket/x', 'https://example.com/x']) {
      assert.throws(() => parseStoreSpec(bad), TypeError, bad);
    }
  });

  test('s3OptionsFromEnv', () => {
    assert.deepEqual(s3OptionsFromEnv({}), { region: 'us-east-1' });
    assert.deepEqual(s3OptionsFromEnv({ AWS_DEFAULT_REGION: 'eu-west-3' }), { region: 'eu-west-3' });
    assert.deepEqual(s3OptionsFromEnv({ AWS_REGION: 'eu-central-1', AWS_DEFAULT_REGION: 'eu-west-3' }), { region: 'eu-central-1' });
    assert.deepEqual(
      s3OptionsFromEnv({ REELAY_S3_ENDPOINT: 'https://s3.example.net', AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'tok' }),
      { region: 'us-east-1', endpoint: 'https://s3.example.net', forcePathStyle: true, credentials: { accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: 'tok' } },
    );
    assert.deepEqual(s3OptionsFromEnv({ AWS_ACCESS_KEY_ID: 'id' }), { region: 'us-east-1' }, 'half a key pair is left to the SDK chain');
    assert.throws(() => s3OptionsFromEnv({ REELAY_S3_ENDPOINT: 'not a url' }), TypeError);
    assert.throws(() => s3OptionsFromEnv({ REELAY_S3_ENDPOINT: 'ftp://x' }), TypeError);
  });

  test('opening: a local folder is made; an S3 store does no I/O until used', async () => {
    const root = join(tmpDir(), 'a', 'b');
    const local = await openObjectStore(root);
    assert.equal(local.kind, 'local');
    assert.ok(statSync(join(root, STAGING)).isDirectory());
    const s3 = await openObjectStore('s3://bucket-name/p', { endpoint: `http://127.0.0.1:${await closedPort()}` });
    assert.equal(s3.kind, 's3');
    assert.match(s3.description, /^s3:\/\/bucket-name\/p\/ at http:\/\/127\.0\.0\.1:\d+$/);
    await s3.close();
  });

  test('a local store removes day-old staged files when it opens, and keeps fresh ones', async () => {
    const root = tmpDir();
    await openObjectStore(root);
    const old = join(root, STAGING, 'old');
    const fresh = join(root, STAGING, 'fresh');
    writeFileSync(old, 'x');
    writeFileSync(fresh, 'x');
    utimesSync(old, new Date(Date.now() - 25 * 3600_000), new Date(Date.now() - 25 * 3600_000));
    await openObjectStore(root);
    assert.ok(!existsSync(old));
    assert.ok(existsSync(fresh));
    await rm(fresh);
  });
});

function readdirNames(dir: string): string[] {
  return readdirSync(dir).sort();
}
