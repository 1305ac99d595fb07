import { randomBytes } from 'node:crypto';
import { constants, createWriteStream, mkdirSync, type BigIntStats } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ObjectStoreError,
  RangeNotSatisfiableError,
  assertKey,
  assertPrefix,
  assertRange,
  contentTypeOf,
  type ByteRange,
  type ObjectInfo,
  type ObjectRead,
  type ObjectStore,
} from './port.js';
import { forEachLimited, withTimeout } from './util.js';

/**
 * The folder under the root where writes are staged before their rename. `~` is outside the key
 * alphabet, so no key can name it or anything in it, and listings skip it.
 */
export const STAGING = '~tmp';
/** Staged files older than this are a crashed writer's and are removed when a store opens. */
const STALE_STAGED_MS = 24 * 3600_000;

/**
 * An object store in a folder: object `a/b.mp4` is the file `<root>/a/b.mp4`.
 * - Writes are staged in `<root>/~tmp/` and renamed into place (one volume: atomic), so a reader
 *   sees the old file or the whole new one. A rename that finds its folder missing makes it and
 *   tries again, so the common put costs no `mkdir` (all asynchronous: a `mkdir` can cost half a
 *   millisecond of kernel time on some volumes).
 * - ETag: `"<size>-<mtime ns>-<inode>"` in base 36, from one `stat`, no read. Every put renames a
 *   new file in, so the tag changes on every replace; it is not a content hash.
 * - `contentType` comes from the key's extension (`contentTypeOf`): a folder keeps no metadata.
 * - Several processes on one machine may share a root (each write is a rename); for several
 *   machines, use S3.
 */
export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local' as const;
  readonly root: string;
  readonly description: string;
  private readonly staging: string;

  private constructor(root: string) {
    this.root = resolve(root);
    this.description = this.root;
    this.staging = join(this.root, STAGING);
  }

  /** Opens (and makes) the folder, and removes staged files a crashed writer left a day ago or more. */
  static async open(root: string): Promise<LocalObjectStore> {
    const store = new LocalObjectStore(root);
    await mkdir(store.staging, { recursive: true });
    await store.sweepStaging();
    return store;
  }

  /**
   * `open`, synchronously (for a constructor): the folder is made at once, and the stale staged
   * files are swept in the background.
   */
  static openSync(root: string): LocalObjectStore {
    const store = new LocalObjectStore(root);
    mkdirSync(store.staging, { recursive: true });
    store.sweepStaging().catch(() => undefined);
    return store;
  }

  localPath(key: string): string {
    assertKey(key);
    return join(this.root, key);
  }

  async putFile(key: string, file: string, opts: { contentType: string; move?: boolean }): Promise<ObjectInfo> {
    const dest = this.localPath(key);
    if (opts.move) {
      // The moved file's mtime becomes the time it was stored (Last-Modified, and the ETag).
      const now = new Date();
      await this.wrap('putFile', key, () => utimes(file, now, now));
      try {
        await this.renameInto(file, dest);
        return await this.info(key);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw this.error('putFile', key, err);
      }
      // Another volume: copy, then remove the source.
      const info = await this.stage(key, dest, (tmp) => copyFile(file, tmp));
      await this.wrap('putFile', key, () => unlink(file));
      return info;
    }
    // FICLONE: a reflink where the volume supports it, else the kernel copies (no user-space buffer).
    return this.stage(key, dest, (tmp) => copyFile(file, tmp, constants.COPYFILE_FICLONE));
  }

  async putStream(key: string, body: Readable, _opts: { contentType: string }): Promise<ObjectInfo> {
    const dest = this.localPath(key);
    return this.stage(key, dest, (tmp) => pipeline(body, createWriteStream(tmp, { flags: 'wx' })));
  }

  async getFile(key: string, file: string): Promise<boolean> {
    const src = this.localPath(key);
    const target = resolve(file);
    const tmp = `${target}.~${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(dirname(target), { recursive: true });
      await copyFile(src, tmp, constants.COPYFILE_FICLONE);
      await rename(tmp, target);
      return true;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(src))) return false;
      throw this.error('getFile', key, err);
    }
  }

  async read(key: string, range?: ByteRange): Promise<ObjectRead | undefined> {
    const path = this.localPath(key);
    if (range) assertRange(range);
    // Open first, then stat the descriptor: the bytes and the info are of the same file even if a
    // put renames a new one in meanwhile.
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw this.error('read', key, err);
    }
    try {
      const st = await handle.stat({ bigint: true });
      if (!st.isFile()) {
        await handle.close();
        return undefined; // a folder of objects, not an object
      }
      const info = this.toInfo(key, st);
      if (!range) return { ...info, body: handle.createReadStream() };
      const total = info.bytes;
      if (range.start >= total) throw new RangeNotSatisfiableError(key, total, range);
      const end = Math.min(range.end ?? total - 1, total - 1);
      return { ...info, body: handle.createReadStream({ start: range.start, end }), range: { start: range.start, end, total } };
    } catch (err) {
      await handle.close();
      if (err instanceof RangeNotSatisfiableError) throw err;
      throw this.error('read', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.localPath(key);
    try {
      const st = await stat(path, { bigint: true });
      return st.isFile() ? this.toInfo(key, st) : undefined;
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw this.error('head', key, err);
    }
  }

  async delete(keys: string[]): Promise<void> {
    const paths = keys.map((k) => this.localPath(k));
    await forEachLimited(paths, 16, async (p, i) => {
      try {
        await unlink(p);
      } catch (err) {
        // EISDIR: a folder of objects, not an object (absent, as in S3).
        if (!isAbsent(err) && (err as NodeJS.ErrnoException).code !== 'EISDIR') throw this.error('delete', keys[i]!, err);
      }
    });
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const dir = join(this.root, prefix.slice(0, slash + 1));
    const start = prefix.slice(slash + 1);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return 0;
      throw this.error('deletePrefix', prefix, err);
    }
    let count = 0;
    await forEachLimited(
      entries.filter((e) => e.name.startsWith(start) && e.name !== STAGING),
      8,
      async (e) => {
        const removed = await this.removeTree(join(dir, e.name), e.isDirectory(), prefix);
        count += removed;
      },
    );
    // A prefix that ends with `/` names a folder: it is empty now, unless a put raced in.
    if (start === '' && dir !== this.root) await rmdir(dir).catch(() => undefined);
    return count;
  }

  async check(timeoutMs = 3000): Promise<{ ok: boolean; error?: string }> {
    const probe = join(this.staging, `check-${process.pid}-${randomBytes(4).toString('hex')}`);
    const attempt = (async () => {
      await mkdir(this.staging, { recursive: true });
      await writeFile(probe, 'ok');
      await unlink(probe);
    })();
    return withTimeout(attempt, timeoutMs, `the results folder ${this.root}`);
  }

  async close(): Promise<void> {}

  /** Writes into a staged file, renames it to `dest`, and resolves to the stored object's info. */
  private async stage(key: string, dest: string, write: (tmp: string) => Promise<unknown>): Promise<ObjectInfo> {
    const tmp = join(this.staging, `${randomBytes(9).toString('base64url')}`);
    try {
      await write(tmp);
      await this.renameInto(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw this.error('put', key, err);
    }
    return this.info(key);
  }

  /** Renames `from` to `dest`, making `dest`'s folder when it is missing (first write there, or a deletePrefix removed it). */
  private async renameInto(from: string, dest: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(from, dest);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' || attempt >= 3 || !(await exists(from))) {
          if (code === 'ENOTDIR' || code === 'EISDIR') throw new Error(`a key cannot be both an object and a folder of objects (${code})`, { cause: err });
          throw err;
        }
        await mkdir(dirname(dest), { recursive: true });
      }
    }
  }

  private async info(key: string): Promise<ObjectInfo> {
    const info = await this.head(key);
    if (!info) throw new ObjectStoreError(`local put ${key}: the object vanished right after it was stored (deleted concurrently?)`, 'put');
    return info;
  }

  private toInfo(key: string, st: BigIntStats): ObjectInfo {
    return {
      key,
      bytes: Number(st.size),
      etag: `"${st.size.toString(36)}-${st.mtimeNs.toString(36)}-${st.ino.toString(36)}"`,
      contentType: contentTypeOf(key),
      lastModified: Number(st.mtimeMs),
    };
  }

  /** Removes a file, or a folder's files (counted) and the folders themselves. */
  private async removeTree(path: string, isDir: boolean, prefix: string): Promise<number> {
    if (!isDir) {
      try {
        await unlink(path);
        return 1;
      } catch (err) {
        if (isAbsent(err)) return 0;
        throw this.error('deletePrefix', prefix, err);
      }
    }
    let entries;
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return 0;
      throw this.error('deletePrefix', prefix, err);
    }
    let count = 0;
    for (const e of entries) {
      const removed = await this.removeTree(join(path, e.name), e.isDirectory(), prefix);
      count += removed;
    }
    await rmdir(path).catch(() => undefined); // not empty: a put raced in, and its object stays
    return count;
  }

  private async sweepStaging(): Promise<void> {
    const cutoff = Date.now() - STALE_STAGED_MS;
    for (const name of await readdir(this.staging)) {
      const p = join(this.staging, name);
      const st = await stat(p).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) await rm(p, { force: true, recursive: true });
    }
  }

  private async wrap<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.error(op, key, err);
    }
  }

  private error(op: string, key: string, err: unknown): Error {
    if (err instanceof ObjectStoreError) return err;
    const e = err as NodeJS.ErrnoException;
    return new ObjectStoreError(`local ${op} ${key} (in ${this.root}): ${e?.message ?? String(err)}`, op, { cause: err });
  }
}

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
