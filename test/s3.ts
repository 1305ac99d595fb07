import crypto, { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { tmpDir } from './tmp.js';

/** The part of s3rver 3.7.1's API the tests use (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverClass = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
  vhostBuckets?: boolean;
  resetOnClose?: boolean;
}) => S3rverInstance;

// s3rver is CommonJS without type declarations: loaded through require, typed by the interfaces above.
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverClass;

/*
 * s3rver 3.7.1 encrypts ListObjectsV2 continuation tokens with single DES (`'des'`), which OpenSSL
 * 3 (Node >= 17) refuses outside its legacy provider: every truncated listing (more than 1000
 * keys) answers 500 InternalError. Triple DES with the key repeated three times is the same
 * cipher, so while a test s3rver runs, `'des'` is mapped to it (nothing else uses single DES).
 */
type CipherFactory = (algorithm: string, key: Buffer, iv: Buffer | null, options?: unknown) => unknown;
const ciphers = crypto as unknown as { createCipheriv: CipherFactory; createDecipheriv: CipherFactory };
const original = { createCipheriv: ciphers.createCipheriv, createDecipheriv: ciphers.createDecipheriv };
let shimUsers = 0;
function desShim(on: boolean): void {
  shimUsers += on ? 1 : -1;
  if (on && shimUsers === 1) {
    for (const name of ['createCipheriv', 'createDecipheriv'] as const) {
      const make = original[name];
      ciphers[name] = (algorithm, key, iv, options) =>
        algorithm === 'des' ? make('des-ede3-cbc', Buffer.concat([key, key, key]), iv, options) : make(algorithm, key, iv, options);
    }
  } else if (!on && shimUsers === 0) {
    Object.assign(ciphers, original);
  }
}

export interface TestS3 {
  /** `http://127.0.0.1:<port>`: use path-style addressing (`forcePathStyle`). */
  endpoint: string;
  bucket: string;
  /** s3rver accepts any credentials (it does not verify SigV4 signatures); these are conventional. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /** The folder s3rver keeps its buckets in. */
  directory: string;
  /**
   * Writes small objects straight into s3rver's folder, in its layout, without HTTP: s3rver takes
   * about 6 ms per PutObject (more on a busy machine), so 1,050 through the API would cost 6-8 s of
   * a test. What is under test then reads, lists and deletes them through the API.
   */
  seed(keys: string[], body: Buffer): void;
  /** Closes open connections (SDK keep-alive sockets would hold `close` open) and the server. Idempotent. */
  stop(): Promise<void>;
}

/**
 * An in-process s3rver on 127.0.0.1 (a free port) with one bucket, in a fresh temporary folder;
 * `at` starts it again on the port and folder of one stopped before (its objects are still there).
 * Call `stop` in `after`/`t.after`. s3rver tests the protocol use (keys, Range, multipart, presign
 * expiry, deletes), not the security: it accepts any signature.
 */
export async function startTestS3(bucket = 'results', at: { port?: number; directory?: string } = {}): Promise<TestS3> {
  const directory = at.directory ?? tmpDir('reelay-s3rver-');
  const server = new S3rver({ address: '127.0.0.1', port: at.port ?? 0, directory, silent: true, vhostBuckets: false, configureBuckets: [{ name: bucket }] });
  desShim(true);
  let port: number;
  try {
    ({ port } = await server.run());
  } catch (err) {
    desShim(false);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    region: 'us-east-1',
    directory,
    seed(keys, body) {
      // The layout of s3rver 3.7.1's FilesystemStore (getResourcePath, putObject, putMetadata),
      // without the metadata file (it is optional: the type is then binary/octet-stream). The MD5
      // file is written, or s3rver would write it while listing.
      const md5 = createHash('md5').update(body).digest('hex');
      for (const key of keys) {
        const at = join(directory, bucket, key);
        mkdirSync(dirname(at), { recursive: true });
        writeFileSync(`${at}._S3rver_object`, body);
        writeFileSync(`${at}._S3rver_object.md5`, md5);
      }
    },
    stop: () =>
      (stopped ??= (async () => {
        try {
          server.httpServer?.closeAllConnections();
          await server.close();
        } finally {
          desShim(false);
        }
      })()),
  };
}
