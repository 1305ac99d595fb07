import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RangeNotSatisfiableError, type ByteRange, type ObjectInfo, type ObjectStore } from './port.js';
import { attachment } from './util.js';

export interface ServeOptions {
  /**
   * `proxy`: the bytes pass through this process (`store.read`, with the Range). `redirect`: a GET
   * is answered 302 to a presigned URL, and the store's service serves the bytes and the Ranges;
   * for a store that cannot presign (local), the same as `proxy`.
   */
  mode: 'proxy' | 'redirect';
  /** Overrides the stored content type. */
  contentType?: string;
  /** A `Cache-Control` for the object's answers (200, 206, 304; passed to S3 on a redirect). */
  cacheControl?: string;
  /** How long a redirect's presigned URL is valid (default 3600 s). */
  presignSeconds?: number;
  /** Answer with `Content-Disposition: attachment` and this file name. */
  downloadName?: string;
}

/**
 * What `serveObject` did. `found: false`: the object is absent and nothing was sent, so the
 * caller answers in its own error envelope (a 404 of its dialect). `found: true`: the reply was
 * sent (return `reply` from the handler); `status` says how.
 */
export type ServeResult = { found: true; status: 200 | 206 | 302 | 304 | 416; reply: FastifyReply } | { found: false };

/** A redirect's own answer must not outlive its presigned URL, nor be shared. */
const REDIRECT_CACHE_CONTROL = 'private, no-store';

/**
 * Answers a GET or HEAD for the object `key` like a static file server:
 * - 200 with Content-Length, Content-Type, ETag, Last-Modified and `Accept-Ranges: bytes`;
 * - `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` → 206 with Content-Range; a range that starts past
 *   the end (or any range of an empty object) → 416 with `Content-Range: bytes *\/size`; a
 *   malformed Range, another unit, a multi-range (`bytes=0-1,5-6`) or a Range whose `If-Range`
 *   no longer matches → the whole object (200), as RFC 9110 allows;
 * - `If-None-Match` (weak comparison, `*`) or, without it, `If-Modified-Since` → 304;
 * - HEAD: the same status and headers, no body;
 * - `mode: 'redirect'` with a store that presigns: a GET → 302 to a presigned URL (after a HEAD
 *   of the object, so an absent object is still the caller's 404 and a matching If-None-Match is
 *   still a 304 here).
 * The body is streamed from the store and destroyed if the client goes away. The object is read
 * by HEAD then GET; if it is replaced in between (its ETag changes) the answer is worked out
 * again for the new one. Errors of the store (not absence) reject: the caller's error handler
 * answers them.
 */
export async function serveObject(request: FastifyRequest, reply: FastifyReply, store: ObjectStore, key: string, opts: ServeOptions): Promise<ServeResult> {
  const isHead = request.method === 'HEAD';
  let info = await store.head(key);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!info) return { found: false };
    if (notModified(request, info)) {
      validators(reply, info, opts);
      reply.code(304).send();
      return { found: true, status: 304, reply };
    }
    if (opts.mode === 'redirect' && store.presign && !isHead) {
      const url = await store.presign(key, opts.presignSeconds ?? 3600, {
        ...(opts.downloadName ? { downloadName: opts.downloadName } : {}),
        ...(opts.contentType ? { contentType: opts.contentType } : {}),
        ...(opts.cacheControl ? { cacheControl: opts.cacheControl } : {}),
      });
      reply.code(302).header('location', url).header('cache-control', REDIRECT_CACHE_CONTROL).send();
      return { found: true, status: 302, reply };
    }
    const range = requestedRange(request, info);
    if (range === 'unsatisfiable') {
      reply.code(416).header('content-range', `bytes */${info.bytes}`).header('accept-ranges', 'bytes').send();
      return { found: true, status: 416, reply };
    }
    if (isHead) {
      entityHeaders(reply, info, opts, range ? { ...range, total: info.bytes } : undefined);
      // An empty stream, not `send()`: Fastify's automatic HEAD route sets Content-Length: 0 for an
      // undefined payload, and keeps ours for a stream.
      reply.send(Readable.from([]));
      return { found: true, status: range ? 206 : 200, reply };
    }
    let obj;
    try {
      obj = await store.read(key, range ?? undefined);
    } catch (err) {
      if (!(err instanceof RangeNotSatisfiableError)) throw err;
      info = await store.head(key); // it shrank meanwhile: again, with its new size
      continue;
    }
    if (!obj) return { found: false };
    if (obj.etag !== info.etag) {
      // Replaced between the HEAD and the GET: the conditions and the range are the new object's.
      obj.body.destroy();
      info = { key: obj.key, bytes: obj.range?.total ?? obj.bytes, etag: obj.etag, contentType: obj.contentType, lastModified: obj.lastModified };
      continue;
    }
    const body = obj.body;
    reply.raw.once('close', () => body.destroy()); // the client went away (a no-op once the body ended)
    entityHeaders(reply, info, opts, obj.range);
    reply.send(body);
    return { found: true, status: obj.range ? 206 : 200, reply };
  }
  throw new Error(`the object ${key} kept changing while it was being served`);
}

function validators(reply: FastifyReply, info: ObjectInfo, opts: ServeOptions): void {
  reply.header('etag', info.etag);
  reply.header('last-modified', new Date(info.lastModified).toUTCString());
  if (opts.cacheControl) reply.header('cache-control', opts.cacheControl);
}

function entityHeaders(reply: FastifyReply, info: ObjectInfo, opts: ServeOptions, range: { start: number; end: number; total: number } | undefined): void {
  validators(reply, info, opts);
  reply.header('accept-ranges', 'bytes');
  reply.header('content-type', opts.contentType ?? info.contentType);
  if (opts.downloadName) reply.header('content-disposition', attachment(opts.downloadName));
  if (range) {
    reply.code(206);
    reply.header('content-range', `bytes ${range.start}-${range.end}/${range.total}`);
    reply.header('content-length', String(range.end - range.start + 1));
  } else {
    reply.code(200);
    reply.header('content-length', String(info.bytes));
  }
}

const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;
const opaque = (tag: string) => tag.trim().replace(/^W\//, '');

/** If-None-Match (weak comparison), else If-Modified-Since (to the second). */
function notModified(request: FastifyRequest, info: ObjectInfo): boolean {
  const inm = request.headers['if-none-match'];
  if (inm !== undefined) {
    const tags = inm.split(',').map((t) => t.trim());
    return tags.includes('*') || tags.some((t) => opaque(t) === opaque(info.etag));
  }
  const ims = request.headers['if-modified-since'];
  if (ims === undefined) return false;
  const date = Date.parse(ims);
  return Number.isFinite(date) && seconds(info.lastModified) <= date;
}

/**
 * The range to send: null for the whole object (no Range, or one to ignore), `'unsatisfiable'`
 * for a 416, or inclusive offsets within the object.
 */
function requestedRange(request: FastifyRequest, info: ObjectInfo): Required<ByteRange> | null | 'unsatisfiable' {
  const header = request.headers.range;
  if (!header) return null;
  const ifRange = request.headers['if-range'];
  if (ifRange !== undefined) {
    const v = String(ifRange).trim();
    const valid = v.startsWith('"') || v.startsWith('W/') ? v === info.etag : Date.parse(v) === seconds(info.lastModified);
    if (!valid) return null;
  }
  return parseRange(header, info.bytes);
}

/** Parses a single `bytes=` range against a size (RFC 9110 §14.1.2); see `requestedRange`. */
export function parseRange(header: string, size: number): Required<ByteRange> | null | 'unsatisfiable' {
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m || m[1]!.includes(',')) return null;
  const r = /^(\d*)\s*-\s*(\d*)\s*$/.exec(m[1]!);
  if (!r || (r[1] === '' && r[2] === '')) return null;
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  const last = r[2] === '' ? Infinity : Number(r[2]);
  if (last < start) return null; // invalid: ignored
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(last, size - 1) };
}
