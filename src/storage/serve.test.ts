import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { startTestS3, type TestS3 } from '../../test/s3.js';
import { tmpDir } from '../../test/tmp.js';
import { openObjectStore } from './open.js';
import type { ObjectStore } from './port.js';
import { parseRange, serveObject, type ServeOptions } from './serve.js';

const KEY = 'ab/abcdef-video.mp4';
const EMPTY = 'ab/abcdef-empty.mp4';
const LARGE = 'ab/abcdef-large.mp4';
const SIZE = 1024 * 1024 + 7;
const data = randomBytes(SIZE);

let s3: TestS3;
const stores: Record<'local' | 's3', ObjectStore> = {} as never;
/** The bodies `read` handed out, per store (to see that they are destroyed). */
const bodies: Record<string, Readable[]> = { local: [], s3: [] };
let app: FastifyInstance;
const results: { found: boolean; status?: number }[] = [];
/** Keys the racy route replaces right after its HEAD. */
const replaceOnce = new Set<string>();

/** The store, with its reads recorded (the real store does the work). */
function recording(name: string, store: ObjectStore): ObjectStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'read') {
        return async (...args: Parameters<ObjectStore['read']>) => {
          const r = await target.read(...args);
          if (r) bodies[name]!.push(r.body);
          return r;
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

before(async () => {
  s3 = await startTestS3();
  stores.local = await openObjectStore(join(tmpDir('reelay-serve-'), 'results'));
  stores.s3 = await openObjectStore(`s3://${s3.bucket}/served`, { endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials });
  const large = randomBytes(12 * 1024 * 1024);
  for (const store of Object.values(stores)) {
    await store.putStream(KEY, Readable.from([data]), { contentType: 'video/mp4' });
    await store.putStream(EMPTY, Readable.from([]), { contentType: 'video/mp4' });
    await store.putStream(LARGE, Readable.from([large]), { contentType: 'video/mp4' });
  }
  app = Fastify();
  const watched = { local: recording('local', stores.local), s3: recording('s3', stores.s3) };
  type Params = { impl: 'local' | 's3'; mode: 'proxy' | 'redirect'; '*': string };
  const handler =
    (extra: Partial<ServeOptions> = {}) =>
    async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      const { impl, mode, '*': key } = req.params;
      const result = await serveObject(req, reply, watched[impl], key, { mode, cacheControl: 'public, max-age=60', ...extra });
      results.push(result.found ? { found: true, status: result.status } : { found: false });
      // The caller's own error envelope for an absent object.
      if (!result.found) return reply.code(404).send({ error: { code: 'not_found', message: 'no such file' } });
      return result.reply;
    };
  // A GET route (Fastify adds its HEAD route), and one that declares HEAD itself.
  app.get<{ Params: Params }>('/files/:impl/:mode/*', handler());
  app.route<{ Params: Params }>({ method: ['GET', 'HEAD'], url: '/explicit/:impl/:mode/*', handler: handler() });
  app.get<{ Params: Params }>('/download/:impl/:mode/*', handler({ downloadName: 'my vidéo.mp4' }));
  // A concurrent writer at the worst moment: right after serveObject's HEAD, the object is replaced.
  const racy = (store: ObjectStore) =>
    new Proxy(store, {
      get(target, prop) {
        if (prop === 'head') {
          return async (key: string) => {
            const info = await target.head(key);
            if (replaceOnce.has(key)) {
              replaceOnce.delete(key);
              await target.putStream(key, Readable.from([Buffer.from('the new, shorter object')]), { contentType: 'video/mp4' });
            }
            return info;
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  const racing = { local: racy(stores.local), s3: racy(stores.s3) };
  app.get<{ Params: Params }>('/racy/:impl/*', async (req, reply) => {
    const result = await serveObject(req, reply, racing[req.params.impl], req.params['*'], { mode: 'proxy' });
    return result.found ? result.reply : reply.code(404).send();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
  for (const store of Object.values(stores)) await store.close();
  await s3?.stop();
});

for (const impl of ['local', 's3'] as const) {
  describe(`serveObject, proxy mode, ${impl} store`, () => {
    const url = `/files/${impl}/proxy/${KEY}`;

    test('GET: 200 with the whole body and a static file server’s headers; the ETag is stable', async () => {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200);
      assert.ok(res.rawPayload.equals(data));
      assert.equal(res.headers['content-length'], String(SIZE));
      assert.equal(res.headers['content-type'], 'video/mp4');
      assert.equal(res.headers['accept-ranges'], 'bytes');
      assert.equal(res.headers['cache-control'], 'public, max-age=60');
      assert.match(String(res.headers.etag), /^"[^"]+"$/);
      assert.equal(res.headers.etag, (await stores[impl].head(KEY))!.etag);
      assert.equal(new Date(String(res.headers['last-modified'])).getTime(), Math.floor((await stores[impl].head(KEY))!.lastModified / 1000) * 1000);
      const again = await app.inject({ url });
      assert.equal(again.headers.etag, res.headers.etag);
      assert.deepEqual(results.at(-1), { found: true, status: 200 });
    });

    test('HEAD: the same headers, no body (nothing read), on Fastify’s HEAD route and a declared one', async () => {
      const reads = bodies[impl]!.length;
      for (const u of [url, `/explicit/${impl}/proxy/${KEY}`]) {
        const res = await app.inject({ method: 'HEAD', url: u });
        assert.equal(res.statusCode, 200, u);
        assert.equal(res.headers['content-length'], String(SIZE), u);
        assert.equal(res.headers['content-type'], 'video/mp4');
        assert.equal(res.rawPayload.length, 0);
        const ranged = await app.inject({ method: 'HEAD', url: u, headers: { range: 'bytes=0-99' } });
        assert.equal(ranged.statusCode, 206);
        assert.equal(ranged.headers['content-range'], `bytes 0-99/${SIZE}`);
        assert.equal(ranged.headers['content-length'], '100');
      }
      assert.equal(bodies[impl]!.length, reads, 'HEAD opened no body');
    });

    test('Range: 206 for a-b, a-, -n, one byte and a clipped end', async () => {
      const cases: [string, number, number][] = [
        ['bytes=10-19', 10, 19],
        ['bytes=1000-', 1000, SIZE - 1],
        ['bytes=-500', SIZE - 500, SIZE - 1],
        ['bytes=0-0', 0, 0],
        [`bytes=${SIZE - 1}-`, SIZE - 1, SIZE - 1],
        ['bytes=5-999999999', 5, SIZE - 1],
        [`bytes=-${SIZE + 10}`, 0, SIZE - 1],
      ];
      for (const [range, start, end] of cases) {
        const res = await app.inject({ url, headers: { range } });
        assert.equal(res.statusCode, 206, range);
        assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, range);
        assert.equal(res.headers['content-length'], String(end - start + 1), range);
        assert.ok(res.rawPayload.equals(data.subarray(start, end + 1)), range);
        assert.equal(res.headers.etag, (await stores[impl].head(KEY))!.etag);
      }
    });

    test('416 for a range past the end (or any range of an empty object); a Range to ignore gives 200', async () => {
      for (const range of [`bytes=${SIZE}-`, `bytes=${SIZE + 10}-${SIZE + 20}`, 'bytes=-0']) {
        const res = await app.inject({ url, headers: { range } });
        assert.equal(res.statusCode, 416, range);
        assert.equal(res.headers['content-range'], `bytes */${SIZE}`, range);
      }
      const empty = await app.inject({ url: `/files/${impl}/proxy/${EMPTY}`, headers: { range: 'bytes=0-' } });
      assert.equal(empty.statusCode, 416);
      assert.equal(empty.headers['content-range'], 'bytes */0');
      const whole = await app.inject({ url: `/files/${impl}/proxy/${EMPTY}` });
      assert.equal(whole.statusCode, 200);
      assert.equal(whole.headers['content-length'], '0');
      for (const range of ['bytes=0-1,5-6', 'bytes=abc', 'items=0-5', 'bytes=9-2', 'bytes=-']) {
        const res = await app.inject({ url, headers: { range } });
        assert.equal(res.statusCode, 200, range);
        assert.equal(res.rawPayload.length, SIZE, range);
      }
    });

    test('If-None-Match and If-Modified-Since give 304; If-Range decides whether the Range holds', async () => {
      const { etag, 'last-modified': lastModified } = (await app.inject({ method: 'HEAD', url })).headers;
      for (const inm of [String(etag), `W/${etag}`, '*', `"other", ${etag}`]) {
        const res = await app.inject({ url, headers: { 'if-none-match': inm } });
        assert.equal(res.statusCode, 304, inm);
        assert.equal(res.headers.etag, etag);
        assert.equal(res.rawPayload.length, 0);
      }
      assert.equal((await app.inject({ url, headers: { 'if-none-match': '"other"' } })).statusCode, 200);
      assert.equal((await app.inject({ url, headers: { 'if-modified-since': String(lastModified) } })).statusCode, 304);
      assert.equal((await app.inject({ url, headers: { 'if-modified-since': new Date(Date.now() - 3600_000).toUTCString() } })).statusCode, 200);
      assert.equal((await app.inject({ url, headers: { range: 'bytes=0-9', 'if-range': String(etag) } })).statusCode, 206);
      assert.equal((await app.inject({ url, headers: { range: 'bytes=0-9', 'if-range': '"stale"' } })).statusCode, 200);
      assert.equal((await app.inject({ url, headers: { range: 'bytes=0-9', 'if-range': String(lastModified) } })).statusCode, 206);
    });

    test('an absent object: nothing sent, the caller answers in its own envelope', async () => {
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await app.inject({ method, url: `/files/${impl}/proxy/ab/missing.mp4` });
        assert.equal(res.statusCode, 404);
        assert.deepEqual(results.at(-1), { found: false });
        if (method === 'GET') assert.deepEqual(res.json(), { error: { code: 'not_found', message: 'no such file' } });
      }
    });

    test('a download name: Content-Disposition attachment', async () => {
      const res = await app.inject({ url: `/download/${impl}/proxy/${KEY}` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-disposition'], `attachment; filename="my vid_o.mp4"; filename*=UTF-8''my%20vid%C3%A9o.mp4`);
    });

    test('an object replaced between the HEAD and the GET is served as the new one', async () => {
      const key = 'race/abcdef-video.mp4';
      await stores[impl].putStream(key, Readable.from([data]), { contentType: 'video/mp4' });
      const old = (await stores[impl].head(key))!;
      replaceOnce.add(key);
      const res = await app.inject({ url: `/racy/${impl}/${key}`, headers: { range: 'bytes=-6' } });
      const now = (await stores[impl].head(key))!;
      assert.notEqual(now.etag, old.etag);
      assert.equal(res.statusCode, 206);
      assert.equal(res.headers.etag, now.etag);
      assert.equal(res.headers['content-range'], `bytes 17-22/23`);
      assert.equal(res.body, 'object');
      // Without a range, and with an If-None-Match that names neither.
      replaceOnce.add(key);
      await stores[impl].putStream(key, Readable.from([data]), { contentType: 'video/mp4' });
      const older = (await stores[impl].head(key))!;
      const full = await app.inject({ url: `/racy/${impl}/${key}`, headers: { 'if-none-match': '"not-it"' } });
      assert.equal(full.statusCode, 200);
      assert.equal(full.body, 'the new, shorter object');
      assert.notEqual(full.headers.etag, older.etag);
    });

    test('the client goes away mid-body: the store’s stream is destroyed', async () => {
      const { port } = app.server.address() as { port: number };
      const before = bodies[impl]!.length;
      await new Promise<void>((resolve, reject) => {
        const req = get(`http://127.0.0.1:${port}/files/${impl}/proxy/${LARGE}`, (res: IncomingMessage) => {
          assert.equal(res.statusCode, 200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => (err.message.includes('socket hang up') || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      });
      const body = bodies[impl]![before];
      assert.ok(body, 'the object was read');
      if (!body.destroyed) await new Promise((res) => body.once('close', res));
      assert.equal(body.destroyed, true);
      assert.equal(body.readableEnded, false, 'destroyed, not read to its end');
    });
  });
}

describe('serveObject, redirect mode', () => {
  test('S3: GET is a 302 to a presigned URL that S3 serves, Range included', async () => {
    const res = await app.inject({ url: `/files/s3/redirect/${KEY}` });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers['cache-control'], 'private, no-store');
    const location = String(res.headers.location);
    assert.match(location, new RegExp(`^${s3.endpoint}/${s3.bucket}/served/${KEY}\\?.*X-Amz-Signature=`));
    const whole = await fetch(location);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data));
    assert.equal(whole.headers.get('content-type'), 'video/mp4');
    assert.equal(whole.headers.get('cache-control'), 'public, max-age=60', 'the object’s Cache-Control is passed to S3');
    const part = await fetch(location, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${SIZE}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(10, 20)));
    const named = await app.inject({ url: `/download/s3/redirect/${KEY}` });
    const download = await fetch(String(named.headers.location));
    await download.arrayBuffer();
    assert.equal(download.headers.get('content-disposition'), `attachment; filename="my vid_o.mp4"; filename*=UTF-8''my%20vid%C3%A9o.mp4`);
  });

  test('S3: a matching If-None-Match is a 304 here, HEAD is answered here, an absent object is the caller’s 404', async () => {
    const { etag } = await stores.s3.head(KEY).then((i) => i!);
    const notModified = await app.inject({ url: `/files/s3/redirect/${KEY}`, headers: { 'if-none-match': etag } });
    assert.equal(notModified.statusCode, 304);
    const head = await app.inject({ method: 'HEAD', url: `/files/s3/redirect/${KEY}` });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], String(SIZE));
    assert.equal(head.headers.etag, etag);
    const absent = await app.inject({ url: `/files/s3/redirect/ab/missing.mp4` });
    assert.equal(absent.statusCode, 404);
    assert.equal(absent.json().error.code, 'not_found');
  });

  test('a store that cannot presign (local) is proxied', async () => {
    const res = await app.inject({ url: `/files/local/redirect/${KEY}`, headers: { range: 'bytes=-10' } });
    assert.equal(res.statusCode, 206);
    assert.ok(res.rawPayload.equals(data.subarray(SIZE - 10)));
  });
});

test('parseRange', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes = 90 - ', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('BYTES=-5', 100), { start: 95, end: 99 });
  assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-5', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  for (const ignored of ['bytes=0-1,3-4', 'bytes=', 'bytes=-', 'bytes=x-1', 'bytes=5-1', 'lines=0-1', '0-1']) assert.equal(parseRange(ignored, 100), null, ignored);
});
