import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  MAX_KEY_LENGTH,
  InvalidKeyError,
  ObjectStoreError,
  RangeNotSatisfiableError,
  assertKey,
  assertPrefix,
  assertRange,
  type ByteRange,
  type ObjectInfo,
  type ObjectRead,
  type ObjectStore,
  type PresignOptions,
} from './port.js';
import { attachment, messageOf, sliceStream, withTimeout } from './util.js';

/** How to reach an S3-compatible service (what `open.ts` reads from the environment). */
export interface S3ConnectionOptions {
  /** Default `us-east-1`. */
  region?: string;
  /** A non-AWS service (`https://s3.example.net`, `http://127.0.0.1:9000`); AWS's endpoint when unset. */
  endpoint?: string;
  /** `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`; default: on when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config files, instance roles…). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Tries per request, the first included, with the SDK's backoff (default 3). */
  maxAttempts?: number;
  /** Time to establish a connection (default 5000 ms). */
  connectionTimeoutMs?: number;
  /** Time from sending a request (its body included) to the answer's headers (default 60000 ms). */
  requestTimeoutMs?: number;
  /** Time a connection may sit idle mid-request, e.g. a stalled body (default 30000 ms). */
  idleTimeoutMs?: number;
  /** Multipart part size in bytes (default 8 MiB, at least 5 MiB: S3's minimum). */
  partSize?: number;
  /** Parts uploaded at once per put (default 4); a put buffers at most partSize × queueSize bytes. */
  queueSize?: number;
}

export interface S3StoreOptions extends S3ConnectionOptions {
  bucket: string;
  /** Put before every key (`results/` for `s3://bucket/results`); no leading `/`; '' for none. */
  prefix?: string;
}

const MiB = 1024 * 1024;

/**
 * An object store in an S3 bucket (AWS or any S3-compatible service), keys under `prefix`.
 * - The client computes and validates checksums only when an operation requires them
 *   (`WHEN_REQUIRED`): the SDK's default streaming checksum (`aws-chunked` bodies with a trailer)
 *   is not understood by every S3-compatible server (s3rver stores the framing inside the
 *   object). Every put compares the stored length with the bytes sent, and rejects on a mismatch.
 * - Puts go through `@aws-sdk/lib-storage`'s `Upload`: one PutObject for a body under one part,
 *   else a multipart upload (aborted on failure). Parts are buffers, so the SDK can retry them.
 * - Timeouts (`connectionTimeoutMs`, `requestTimeoutMs`, `idleTimeoutMs`) make an unreachable or
 *   stalled service fail in bounded time instead of hanging; each request is tried `maxAttempts`
 *   times.
 */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly prefix: string;
  readonly description: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(opts: S3StoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) throw new TypeError(`S3 bucket name ${JSON.stringify(opts.bucket)} is not valid (3-63 of a-z 0-9 . -)`);
    const prefix = opts.prefix ?? '';
    if (prefix !== '') {
      if (!prefix.endsWith('/')) throw new TypeError(`S3 key prefix ${JSON.stringify(prefix)} must end with "/"`);
      assertKey(prefix.slice(0, -1), 'prefix');
    }
    this.bucket = opts.bucket;
    this.prefix = prefix;
    this.description = `s3://${opts.bucket}/${prefix}` + (opts.endpoint ? ` at ${opts.endpoint}` : '');
    this.partSize = Math.max(5 * MiB, opts.partSize ?? 8 * MiB);
    this.queueSize = Math.max(1, opts.queueSize ?? 4);
    this.client = new S3Client({
      region: opts.region ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? Boolean(opts.endpoint),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: opts.maxAttempts ?? 3,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: opts.connectionTimeoutMs ?? 5000,
        requestTimeout: opts.requestTimeoutMs ?? 60_000,
        throwOnRequestTimeout: true,
        socketTimeout: opts.idleTimeoutMs ?? 30_000,
      },
    });
  }

  async putFile(key: string, file: string, opts: { contentType: string; move?: boolean }): Promise<ObjectInfo> {
    const full = this.full(key);
    const size = await stat(file).then(
      (st) => st.size,
      (err: unknown) => {
        throw new ObjectStoreError(`s3 putFile ${this.where(full)}: cannot read ${file}: ${messageOf(err)}`, 'putFile', { cause: err });
      },
    );
    const info = await this.upload('putFile', key, full, createReadStream(file), opts.contentType, size);
    if (opts.move) {
      await unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw new ObjectStoreError(`s3 putFile ${this.where(full)}: stored, but the source ${file} could not be removed: ${err.message}`, 'putFile', { cause: err });
      });
    }
    return info;
  }

  async putStream(key: string, body: Readable, opts: { contentType: string }): Promise<ObjectInfo> {
    return this.upload('putStream', key, this.full(key), body, opts.contentType);
  }

  async getFile(key: string, file: string): Promise<boolean> {
    const full = this.full(key);
    const target = resolve(file);
    let res: GetObjectCommandOutput;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: full }));
    } catch (err) {
      if (isAbsent(err)) return false;
      throw this.error('getFile', full, err);
    }
    const tmp = `${target}.~${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(dirname(target), { recursive: true });
      const out = createWriteStream(tmp, { flags: 'wx' });
      await pipeline(res.Body as Readable, out);
      if (res.ContentLength !== undefined && out.bytesWritten !== res.ContentLength) {
        throw new Error(`received ${out.bytesWritten} of ${res.ContentLength} bytes`);
      }
      await rename(tmp, target);
      return true;
    } catch (err) {
      (res.Body as Readable | undefined)?.destroy();
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.error('getFile', full, err);
    }
  }

  async read(key: string, range?: ByteRange): Promise<ObjectRead | undefined> {
    const full = this.full(key);
    if (range) assertRange(range);
    let res: GetObjectCommandOutput;
    try {
      res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: full, ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}) }),
      );
    } catch (err) {
      if (isAbsent(err)) return undefined;
      if (range && statusOf(err) === 416) {
        const size = Number((err as { ActualObjectSize?: unknown }).ActualObjectSize);
        if (Number.isSafeInteger(size)) throw new RangeNotSatisfiableError(key, size, range);
        const info = await this.head(key);
        if (!info) return undefined;
        throw new RangeNotSatisfiableError(key, info.bytes, range);
      }
      if (range && statusOf(err) === undefined) {
        // No answer at all: s3rver drops the connection for any range of an empty object, where S3
        // answers 416. Tell the two apart by the object's size.
        const info = await this.head(key).catch(() => undefined);
        if (info?.bytes === 0) throw new RangeNotSatisfiableError(key, 0, range);
      }
      throw this.error('read', full, err);
    }
    const body = res.Body as Readable;
    const info = this.toInfo(key, res, res.ContentLength ?? 0);
    if (!range) return { ...info, body };
    // The object's size and the bytes the answer holds: from Content-Range, or the whole object
    // when a server ignored the Range.
    const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    const total = cr ? Number(cr[3]) : (res.ContentLength ?? 0);
    const got = cr ? { start: Number(cr[1]), end: Number(cr[2]) } : { start: 0, end: total - 1 };
    if (range.start >= total) {
      body.destroy();
      throw new RangeNotSatisfiableError(key, total, range);
    }
    const end = Math.min(range.end ?? total - 1, total - 1);
    if (got.start > range.start || got.end < end) {
      body.destroy();
      throw this.error('read', full, new Error(`asked for bytes ${range.start}-${end}, the server sent ${got.start}-${got.end} of ${total}`));
    }
    // A server that sent more than asked (s3rver answers `bytes=0-0` with the whole object) is cut to the range.
    const exact = got.start === range.start && got.end === end ? body : sliceStream(body, range.start - got.start, end - range.start + 1);
    return { ...info, bytes: total, body: exact, range: { start: range.start, end, total } };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const full = this.full(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full }));
      return this.toInfo(key, res, res.ContentLength ?? 0);
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw this.error('head', full, err);
    }
  }

  async delete(keys: string[]): Promise<void> {
    const full = [...new Set(keys.map((k) => this.full(k)))];
    for (let i = 0; i < full.length; i += 1000) await this.deleteBatch('delete', full.slice(i, i + 1000));
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertPrefix(prefix);
    const fullPrefix = this.prefix + prefix;
    let count = 0;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: fullPrefix, ContinuationToken: token, MaxKeys: 1000 }));
      } catch (err) {
        throw this.error('deletePrefix', `${fullPrefix}*`, err);
      }
      const keys = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
      if (keys.length) count += await this.deleteBatch('deletePrefix', keys);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return count;
  }

  async presign(key: string, expiresSec: number, opts: PresignOptions = {}): Promise<string> {
    const full = this.full(key);
    if (!Number.isInteger(expiresSec) || expiresSec < 1 || expiresSec > 604_800) throw new TypeError(`presign expiry must be 1 to 604800 seconds, not ${expiresSec}`);
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: full,
      ...(opts.downloadName ? { ResponseContentDisposition: attachment(opts.downloadName) } : {}),
      ...(opts.contentType ? { ResponseContentType: opts.contentType } : {}),
      ...(opts.cacheControl ? { ResponseCacheControl: opts.cacheControl } : {}),
    });
    try {
      return await getSignedUrl(this.client, command, { expiresIn: expiresSec });
    } catch (err) {
      throw this.error('presign', full, err);
    }
  }

  async check(timeoutMs = 3000): Promise<{ ok: boolean; error?: string }> {
    const attempt = (async () => {
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) throw new Error('the bucket does not exist');
        if (status === 403 || status === 401) throw new Error(`access denied (HTTP ${status}): check the credentials and the bucket policy`);
        if ((err as Error)?.name === 'AbortError') throw new Error(`no answer within ${timeoutMs} ms`);
        throw new Error(describeError(err));
      }
    })();
    return withTimeout(attempt, timeoutMs + 250, this.description);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Uploads `body` (counting its bytes), then checks what S3 stored. */
  private async upload(op: string, key: string, full: string, body: Readable, contentType: string, expected?: number): Promise<ObjectInfo> {
    let sent = 0;
    const counted = body.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          cb(null, chunk);
        },
      }),
    );
    // pipe() does not pass errors on: a failing source must fail the upload.
    let sourceError: unknown;
    body.once('error', (err) => {
      sourceError = err;
      counted.destroy(err);
    });
    let etag: string | undefined;
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: full, Body: counted, ContentType: contentType },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      });
      etag = (await upload.done()).ETag;
    } catch (err) {
      body.destroy();
      counted.destroy();
      // The source's error is the cause. Upload then aborts a multipart upload, and when that fails
      // too (s3rver does not implement AbortMultipartUpload) it rejects with the abort's error.
      if (sourceError !== undefined && err !== sourceError) {
        throw new ObjectStoreError(`s3 ${op} ${this.where(full)}: the body failed: ${messageOf(sourceError)} (then: ${describeError(err)})`, op, { cause: sourceError });
      }
      throw this.error(op, full, err);
    }
    if (expected !== undefined && sent !== expected) throw this.error(op, full, new Error(`read ${sent} bytes of a ${expected}-byte file (did it change while it was stored?)`));
    const info = await this.head(key);
    if (!info) throw this.error(op, full, new Error('the object is absent right after its upload (deleted concurrently?)'));
    if (info.etag === etag && info.bytes !== sent) {
      throw this.error(op, full, new Error(`the server stored ${info.bytes} bytes for the ${sent} sent (does it mishandle aws-chunked bodies?)`));
    }
    return info;
  }

  /** DeleteObjects for up to 1000 full keys; resolves to how many were deleted. */
  private async deleteBatch(op: string, keys: string[]): Promise<number> {
    let res;
    try {
      res = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
    } catch (err) {
      throw this.error(op, `${keys.length} keys from ${keys[0]}`, err);
    }
    const errors = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (errors.length) {
      const first = errors[0]!;
      throw new ObjectStoreError(`s3 ${op} s3://${this.bucket}: ${errors.length} of ${keys.length} objects were not deleted, e.g. ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim(), op);
    }
    return keys.length;
  }

  private full(key: string): string {
    assertKey(key);
    const full = this.prefix + key;
    if (full.length > MAX_KEY_LENGTH) throw new InvalidKeyError(`object key with its prefix is longer than ${MAX_KEY_LENGTH} characters`);
    return full;
  }

  private toInfo(key: string, res: { ContentLength?: number; ETag?: string; ContentType?: string; LastModified?: Date }, bytes: number): ObjectInfo {
    return {
      key,
      bytes,
      etag: res.ETag ?? '""',
      contentType: res.ContentType ?? 'application/octet-stream',
      lastModified: res.LastModified?.getTime() ?? 0,
    };
  }

  private where(full: string): string {
    return `s3://${this.bucket}/${full}`;
  }

  private error(op: string, full: string, err: unknown): Error {
    if (err instanceof ObjectStoreError || err instanceof InvalidKeyError) return err;
    return new ObjectStoreError(`s3 ${op} ${this.where(full)}: ${describeError(err)}`, op, { cause: err });
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isAbsent(err: unknown): boolean {
  const name = (err as Error)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(err) === 404 && name !== 'NoSuchBucket');
}

/** An SDK error as one line: its code, the HTTP status, and the cause for a network failure. */
function describeError(err: unknown): string {
  const status = statusOf(err);
  if (err instanceof S3ServiceException) {
    const msg = err.message && err.message !== 'UnknownError' ? `: ${err.message}` : '';
    return `${err.name}${msg} (HTTP ${status ?? '?'})`;
  }
  return messageOf(err);
}
