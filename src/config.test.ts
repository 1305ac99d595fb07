import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

test('result storage settings: the data folder by default, a folder, or s3:// with an endpoint; bad ones are clear errors', () => {
  const base = { REELAY_DATA_DIR: '/srv/reelay' };
  const local = loadConfig(base);
  assert.deepEqual([local.storage, local.s3Endpoint, local.filesMode], [join('/srv/reelay', 'results'), undefined, 'proxy']);
  assert.equal(loadConfig({ ...base, REELAY_STORAGE: 'elsewhere/results' }).storage, resolve('elsewhere/results'));
  assert.equal(loadConfig({ ...base, REELAY_STORAGE: 'file:///mnt/results' }).storage, '/mnt/results');
  const s3 = loadConfig({ ...base, REELAY_STORAGE: 's3://reelay-results/prod', REELAY_S3_ENDPOINT: 'http://127.0.0.1:9000', REELAY_FILES: 'redirect' });
  assert.deepEqual([s3.storage, s3.s3Endpoint, s3.filesMode], ['s3://reelay-results/prod', 'http://127.0.0.1:9000', 'redirect']);

  const bad: [Record<string, string>, RegExp][] = [
    [{ REELAY_STORAGE: 's3://' }, /REELAY_STORAGE: .*not a valid bucket name/],
    [{ REELAY_STORAGE: 's3:///prefix' }, /REELAY_STORAGE: .*not a valid bucket name/],
    [{ REELAY_STORAGE: 's3://Bad_Bucket' }, /not a valid bucket name/],
    [{ REELAY_STORAGE: 'gs://bucket' }, /REELAY_STORAGE: .*unsupported scheme gs:\/\//],
    [{ REELAY_STORAGE: 's3://bucket/a/../b' }, /the prefix may hold only/],
    [{ REELAY_STORAGE: 's3://bucket', REELAY_S3_ENDPOINT: 'minio:9000' }, /REELAY_S3_ENDPOINT .*must be an http:\/\/ or https:\/\/ URL/],
    [{ REELAY_S3_ENDPOINT: 'http://127.0.0.1:9000' }, /REELAY_S3_ENDPOINT is set but REELAY_STORAGE is not an s3:\/\/ URL/],
    [{ REELAY_FILES: 'presign' }, /REELAY_FILES must be proxy or redirect, got "presign"/],
  ];
  for (const [env, message] of bad) {
    assert.throws(() => loadConfig({ ...base, ...env }), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(env));
  }
});
