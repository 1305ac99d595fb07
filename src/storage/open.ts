import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalObjectStore } from './local.js';
import type { ObjectStore } from './port.js';
import type { S3ConnectionOptions } from './s3.js';

/** Where results are kept, parsed from the setting (see `parseStoreSpec`). */
export type StoreSpec = { kind: 'local'; root: string } | { kind: 's3'; bucket: string; prefix: string };

/**
 * Parses a storage setting:
 * - `s3://bucket` or `s3://bucket/some/prefix` (keys under `some/prefix/`);
 * - a folder: an absolute path, a path relative to `cwd`, or a `file://` URL.
 * Anything else (another URL scheme, a query, a bad bucket name) throws with the reason.
 */
export function parseStoreSpec(spec: string, cwd = process.cwd()): StoreSpec {
  const s = spec.trim();
  if (!s) throw new TypeError('the storage setting is empty: give a folder or s3://bucket/prefix');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(s)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(s);
    if (!m) throw new TypeError(`storage URL ${JSON.stringify(spec)}: write s3://bucket/prefix, without a query or fragment`);
    const bucket = m[1]!;
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new TypeError(`storage URL ${JSON.stringify(spec)}: ${JSON.stringify(bucket)} is not a valid bucket name (3-63 of a-z 0-9 . -)`);
    const path = (m[2] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
    if (path && (path.includes('//') || !/^[A-Za-z0-9._/-]+$/.test(path) || path.split('/').some((p) => p === '.' || p === '..'))) {
      throw new TypeError(`storage URL ${JSON.stringify(spec)}: the prefix may hold only A-Z a-z 0-9 . _ - and single "/"`);
    }
    return { kind: 's3', bucket, prefix: path ? `${path}/` : '' };
  }
  if (scheme === 'file') return { kind: 'local', root: fileURLToPath(s) };
  if (scheme) throw new TypeError(`storage setting ${JSON.stringify(spec)}: unsupported scheme ${scheme}:// (use a folder or s3://bucket/prefix)`);
  return { kind: 'local', root: isAbsolute(s) ? s : resolve(cwd, s) };
}

/**
 * Opens the store a setting names (`parseStoreSpec`). A folder is made if missing. An S3 store
 * does no I/O when it opens: call `check()` to see that the bucket answers. `s3` says how to reach
 * S3 (see `s3OptionsFromEnv`); the caller reads the environment, this module does not.
 */
export async function openObjectStore(spec: string | StoreSpec, s3: S3ConnectionOptions = {}): Promise<ObjectStore> {
  const parsed = typeof spec === 'string' ? parseStoreSpec(spec) : spec;
  if (parsed.kind === 'local') return LocalObjectStore.open(parsed.root);
  // Loaded only here: the AWS SDK costs a few hundred milliseconds of start-up a folder does not need.
  const { S3ObjectStore } = await import('./s3.js');
  return new S3ObjectStore({ ...s3, bucket: parsed.bucket, prefix: parsed.prefix });
}

/**
 * The S3 connection settings in an environment (pass `process.env`):
 * - `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`;
 * - `REELAY_S3_ENDPOINT`: a non-AWS service (`https://…`), addressed path-style;
 * - `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) when both are set; else
 *   the SDK's own chain finds credentials (shared config files, SSO, container or instance roles).
 */
export function s3OptionsFromEnv(env: Record<string, string | undefined>): S3ConnectionOptions {
  const opts: S3ConnectionOptions = { region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1' };
  const endpoint = env.REELAY_S3_ENDPOINT?.trim();
  if (endpoint) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new TypeError(`REELAY_S3_ENDPOINT ${JSON.stringify(endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`REELAY_S3_ENDPOINT ${JSON.stringify(endpoint)} must be an http:// or https:// URL`);
    opts.endpoint = endpoint;
    opts.forcePathStyle = true;
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    opts.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  return opts;
}
