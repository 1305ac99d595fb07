import type { Readable } from 'node:stream';

/**
 * The object storage port: where results (videos, stills, input copies) live, by key. Two
 * implementations keep the same contract (`contract.test.ts` runs one suite against both):
 * `local.ts` (a folder on this machine) and `s3.ts` (any S3-compatible service, so that many
 * processes on many machines share the results). `open.ts` picks one from a setting.
 *
 * Guarantees every implementation keeps:
 * - **Keys** follow `assertKey`: checked before any I/O, so a bad key never reaches the disk or
 *   the network, and the local store can never reach outside its root.
 * - **No half objects.** A reader sees the previous object or the complete new one, never part
 *   of a write: local writes go through a temporary file renamed into place; S3 makes an object
 *   visible only when its (multipart) upload completes.
 * - **Streaming.** No operation reads a whole object or file into memory (S3 uploads buffer at
 *   most `queueSize` parts of `partSize` bytes).
 * - **Read-after-write.** Once a put resolves, `head`, `read` and `getFile` from any process see
 *   the new object (S3 has been strongly consistent since 2020; most S3-compatible services are).
 * - **Absent is not an error.** `head`/`read` resolve to undefined, `getFile` to false, `delete`
 *   of absent keys succeeds. Other failures (permissions, network, timeouts) reject with an
 *   `ObjectStoreError` naming the operation, the store and the key.
 * - A key is a file name, not a folder: do not store both `a` and `a/b` (a folder cannot also be a
 *   file on disk; S3 would allow it).
 */
export interface ObjectStore {
  readonly kind: 'local' | 's3';
  /** For logs and errors: the folder, or `s3://bucket/prefix`. Holds no credentials. */
  readonly description: string;

  /**
   * Stores the local file `file` under `key`, streaming, and replaces an object of that key.
   * `contentType` is kept by S3; the local store derives it from the key's extension
   * (`contentTypeOf`), so name keys with their extension.
   * With `move: true` the source file is gone afterwards, for both: the local store renames it
   * into place (zero copy on one volume; a copy then unlink across volumes), S3 unlinks it once
   * the upload completed. Without it the source is left alone. On failure the source is kept.
   * Resolves to the stored object's info (read back after the write: a put that replaced it at
   * that very moment would show instead).
   */
  putFile(key: string, file: string, opts: { contentType: string; move?: boolean }): Promise<ObjectInfo>;

  /**
   * Stores a stream of unknown length under `key` (S3: a multipart upload once it passes one
   * part, aborted on failure, so no parts are left behind), replacing an object of that key.
   * The stream is consumed; if it errors, the put rejects and the previous object stays.
   */
  putStream(key: string, body: Readable, opts: { contentType: string }): Promise<ObjectInfo>;

  /**
   * Writes the object to the local file `file`, streaming and atomically: into a temporary file
   * next to it, renamed over `file` at the end (a reader of `file` sees the old file or the whole
   * object; a failure leaves no temporary file). Makes `file`'s folder if needed. Resolves to false
   * (and leaves `file` alone) when the object is absent.
   */
  getFile(key: string, file: string): Promise<boolean>;

  /**
   * The object, whole, or the bytes `start`..`end` (both inclusive; `end` defaults to and is
   * clipped to the last byte). Undefined when absent. A range that starts at or past the end (any
   * range of an empty object) rejects with `RangeNotSatisfiableError` carrying the size; a
   * malformed range (negative, `end` < `start`, not an integer) throws `TypeError`. The body must
   * be consumed or destroyed (it holds a file descriptor or a connection).
   */
  read(key: string, range?: ByteRange): Promise<ObjectRead | undefined>;

  /**
   * The object's info without its body; undefined when absent. (S3 cannot tell a missing bucket
   * from a missing object on a HEAD: `check()` tells.)
   */
  head(key: string): Promise<ObjectInfo | undefined>;

  /** Deletes these keys (all checked first); absent keys are not an error. */
  delete(keys: string[]): Promise<void>;

  /**
   * Deletes every object whose key starts with `prefix` (a plain string prefix, as in S3: it need
   * not end at a `/`, so `ab/abc-` takes `ab/abc-video.mp4` but not `ab/abd-…`). Checked as a key
   * would be, and not empty (that would be everything). S3: listed and deleted in pages of 1000.
   * Resolves to how many objects it deleted. Objects put while it runs may survive.
   */
  deletePrefix(prefix: string): Promise<number>;

  /**
   * Local only: the path of the object's file (which may not exist), for tools that need a path
   * (ffmpeg), zero copy. Read it, never write it: writes go through `putFile`.
   */
  localPath?(key: string): string;

  /**
   * S3 only: a presigned GET URL for the object, valid `expiresSec` seconds (1 to 604800, SigV4's
   * limit). The holder needs no credentials; S3 serves it whole or by Range. `downloadName` asks S3
   * to answer with `Content-Disposition: attachment` and that file name; `contentType` and
   * `cacheControl` override the stored headers. Signing does no I/O and does not check that the
   * object exists.
   */
  presign?(key: string, expiresSec: number, opts?: PresignOptions): Promise<string>;

  /**
   * Is the store usable (for a readiness endpoint)? Local: a file can be written and removed in
   * the root. S3: HeadBucket succeeds. Resolves (never rejects) within about `timeoutMs` (default
   * 3000) to `{ ok: true }` or `{ ok: false, error }`, a sentence naming the store and the cause.
   */
  check(timeoutMs?: number): Promise<{ ok: boolean; error?: string }>;

  /** Releases connections (S3). The store must not be used afterwards. */
  close(): Promise<void>;
}

export interface ObjectInfo {
  key: string;
  bytes: number;
  /**
   * A strong HTTP entity tag, quoted, ready for an `ETag` header; it changes whenever the object
   * is replaced. Opaque: S3's is the MD5 of a single-part upload and something else for multipart;
   * the local store's comes from the file's size, mtime and inode (no read), so two puts of the same
   * bytes have different tags.
   */
  etag: string;
  contentType: string;
  /** When the object was stored, in ms since the epoch (S3: to the second). */
  lastModified: number;
}

/** An object's info (`bytes` is its whole size, for a range read too) and its bytes. */
export interface ObjectRead extends ObjectInfo {
  body: Readable;
  /** Present for a range read: the bytes the body holds (inclusive) and the object's size. */
  range?: { start: number; end: number; total: number };
}

/** Inclusive byte offsets; `end` omitted means to the last byte. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface PresignOptions {
  downloadName?: string;
  contentType?: string;
  cacheControl?: string;
}

/** A range read that starts at or past the end of the object: an HTTP 416 with `bytes *\/size`. */
export class RangeNotSatisfiableError extends Error {
  override readonly name = 'RangeNotSatisfiableError';
  readonly code = 'ERR_RANGE_NOT_SATISFIABLE';
  constructor(
    readonly key: string,
    readonly size: number,
    readonly range: ByteRange,
  ) {
    super(`range ${range.start}-${range.end ?? ''} of ${key} is not satisfiable: the object has ${size} bytes`);
  }
}

/** A key or prefix that breaks the key rule (`assertKey`); thrown before any I/O. */
export class InvalidKeyError extends TypeError {
  override readonly name = 'InvalidKeyError';
  readonly code = 'ERR_INVALID_OBJECT_KEY';
}

/** A store operation that failed for a reason other than an absent object or a bad argument. */
export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
  constructor(
    message: string,
    readonly op: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** S3's limit is 1024 bytes for the whole key (prefix included); the store checks the sum. */
export const MAX_KEY_LENGTH = 1024;

/**
 * The key rule: `/`-separated segments of `[A-Za-z0-9._-]`, no empty segment (no leading,
 * trailing or double `/`), no `.` or `..` segment and no `..` anywhere, at most 1024 characters.
 * The same keys then mean the same objects on a disk and in S3, need no escaping in URLs or
 * paths, and cannot climb out of the local root.
 */
export function assertKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError(`object ${what} must be a non-empty string`);
  if (key.length > MAX_KEY_LENGTH) throw new InvalidKeyError(`object ${what} is longer than ${MAX_KEY_LENGTH} characters`);
  if (key.includes('..')) throw new InvalidKeyError(`object ${what} ${JSON.stringify(key)} contains ".."`);
  for (const seg of key.split('/')) {
    if (seg === '') throw new InvalidKeyError(`object ${what} ${JSON.stringify(key)} has an empty segment (a leading, trailing or double "/")`);
    if (seg === '.') throw new InvalidKeyError(`object ${what} ${JSON.stringify(key)} has a "." segment`);
    if (!SEGMENT.test(seg)) throw new InvalidKeyError(`object ${what} ${JSON.stringify(key)} may hold only A-Z a-z 0-9 . _ - and "/" between segments`);
  }
}

/** A `deletePrefix` prefix: as a key, except that it may end with `/`. */
export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || prefix.length === 0) throw new InvalidKeyError('object prefix must be a non-empty string (an empty one would delete everything)');
  assertKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'prefix');
}

/** Checks a range's shape (not against a size); throws TypeError. */
export function assertRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw new TypeError(`range start must be a non-negative integer, not ${start}`);
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) throw new TypeError(`range end must be an integer >= start (${start}), not ${end}`);
}

const TYPES: Record<string, string> = {
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  webp: 'image/webp',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  vtt: 'text/vtt',
};

/** The content type of a key's extension (the local store's `contentType`); `application/octet-stream` when unknown. */
export function contentTypeOf(key: string): string {
  const dot = key.lastIndexOf('.');
  const ext = dot > key.lastIndexOf('/') ? key.slice(dot + 1).toLowerCase() : '';
  return TYPES[ext] ?? 'application/octet-stream';
}
