import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from './config-error.js';
import { type RoutingConfig, defaultRouting, loadRoutingFile } from './routing/config.js';
import { parseStoreSpec, s3OptionsFromEnv } from './storage/open.js';

/** Reelay's configuration. Every field is read from the environment; defaults are in the comments. */
export interface Config {
  /** `PORT` (default 8080). */
  port: number;
  /** `HOST` (default 127.0.0.1). */
  host: string;
  /**
   * `REELAY_DATA_DIR` (default `./data`): the SQLite file, the results (`results/`, unless
   * `REELAY_STORAGE` keeps them elsewhere), the work folder of files being made (`work/`) and the
   * local renderer's jobs (`renders/`).
   */
  dataDir: string;
  /** `REELAY_API_KEYS`: comma-separated bearer keys accepted at start, each its own tenant. */
  apiKeys: string[];
  /** `REELAY_PUBLIC_URL` (default `http://HOST:PORT`, `https://` with TLS): base of the URLs put in responses. */
  publicUrl: string;
  /**
   * `REELAY_TLS_CERT` and `REELAY_TLS_KEY`: PEM files (the certificate, with its chain, and its
   * private key). With both, Reelay serves HTTPS on `PORT`; one without the other is an error.
   */
  tls?: { certFile: string; keyFile: string };
  /** `REELAY_URL_ALLOWLIST`: hosts (`img.internal`, `127.0.0.1`) or CIDRs (`10.0.0.0/8`) exempt from the private-address block. Empty by default. */
  urlAllowlist: string[];
  /**
   * `REELAY_STORAGE` (default `<REELAY_DATA_DIR>/results`): where results (videos, stills, input
   * copies) are kept. A folder (a path, or a `file://` URL), or `s3://bucket/prefix`: an
   * S3-compatible bucket, which many processes on many machines share. S3 credentials and region
   * come from the standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
   * `AWS_SESSION_TOKEN`, `AWS_REGION`, default `us-east-1`), else the AWS SDK's own chain
   * (shared config files, instance roles). Kept as given, a folder made absolute:
   * `s3://reelay-results/prod`, `/srv/reelay/results`.
   */
  storage: string;
  /**
   * `REELAY_S3_ENDPOINT`: an S3-compatible service other than AWS (`http://minio.internal:9000`),
   * addressed path-style (`<endpoint>/<bucket>/<key>`). Default: AWS's endpoint for the region.
   * Only with an `s3://` `REELAY_STORAGE`.
   */
  s3Endpoint?: string;
  /**
   * `REELAY_FILES` (default `proxy`): how result URLs (`/files/<token>/<name>`, and the OpenAI and
   * Gemini downloads) are answered. `proxy`: the bytes pass through Reelay, with Range and ETag.
   * `redirect`: a 302 to a presigned URL valid one hour, so S3 serves the bytes; with a folder
   * for storage it is the same as `proxy`.
   */
  filesMode: 'proxy' | 'redirect';
  /** `REELAY_RETENTION_DAYS` (default 14): tasks and files older than this are removed. */
  retentionMs: number;
  /**
   * `REELAY_IDEMPOTENCY_TTL_HOURS` (default 24, at least 24): how long an `Idempotency-Key` and
   * the answer it gave are kept.
   */
  idempotencyTtlMs: number;
  /**
   * `REELAY_KEY_CREATES_PER_MINUTE` (default 0: no limit): how many tasks one key may create per
   * minute, with a burst of as many; past it a create is a 429 with `Retry-After`. Counted by each
   * API process on its own.
   */
  keyCreatesPerMinute: number;
  /**
   * `REELAY_KEY_MAX_IN_FLIGHT` (default 0: no limit): how many tasks of one key are worked on at
   * once. The rest are accepted and wait, `queued`, for a place, oldest first; the limit holds
   * across every engine process.
   */
  keyMaxInFlight: number;
  /** `REELAY_TASK_DEADLINE_SECONDS` (default 1800): a task not terminal by then fails. */
  taskDeadlineMs: number;
  /** `REELAY_ERROR_SLEEP_MS` (default 5000): wait between retries of a failed step. */
  errorSleepMs: number;
  /** `REELAY_MAX_RETRIES` (default 3): retries of a step after its first failure. */
  maxRetries: number;
  /** `REELAY_LEASE_MS` (default 30000): how long a claimed task stays with its engine without a heartbeat. */
  leaseMs: number;
  /** `REELAY_BODY_LIMIT_BYTES` (default 8 MiB): the largest request body accepted. */
  bodyLimitBytes: number;
  /** `REELAY_IMAGE_MAX_BYTES` (default 10 MiB): the largest input image fetched. */
  imageMaxBytes: number;
  /** `REELAY_CALLBACK_TIMEOUT_MS` (default 15000): how long a callback receiver may take to answer. */
  callbackTimeoutMs: number;
  /**
   * `REELAY_CALLBACK_MAX_ATTEMPTS` (default 10): tries per callback; with the default schedule,
   * the last comes about 75 hours after the first.
   */
  callbackMaxAttempts: number;
  /**
   * `REELAY_CALLBACK_BACKOFF_MS` (unset by default): the first retry delay of a callback, each later
   * one 4× longer, at most 10 min. Unset, retries follow the Standard Webhooks schedule (5 s,
   * 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h).
   */
  callbackBackoffMs: number | undefined;
  /** `REELAY_RENDER_DELAY_MS` (default 0): the local renderer reports "running" at least this long. */
  renderDelayMs: number;
  /** `REELAY_RENDER_CONCURRENCY` (default 1): local ffmpeg renders run at once. */
  renderConcurrency: number;
  /** `REELAY_BLOCKED_WORDS` (default `nsfw`): comma-separated words that make the local renderer reject a prompt for safety. */
  blockedWords: string[];
  /** `REELAY_FFMPEG` / `REELAY_FFPROBE`: binaries to use; default the system's, else the bundled ones. */
  ffmpegPath?: string;
  ffprobePath?: string;
  /**
   * `REELAY_ROLE` (default `all`), or `reelay serve --role`: what this process does.
   * - `api`: serves the HTTP API (every dialect, files, upstream callbacks); tasks are stored and
   *   left to engines.
   * - `engine`: runs tasks (claims, submits, polls, downloads, renders, callbacks); its HTTP port
   *   answers only `/healthz`, `/readyz` and `/metrics`.
   * - `all`: both, the embedded default.
   * Any number of each can share one PostgreSQL database (`REELAY_DATABASE_URL`) and one bucket.
   */
  role: Role;
  /** The role runs tasks (`engine` or `all`). `REELAY_ENGINE=off` is the older spelling of `REELAY_ROLE=api`. */
  engine: boolean;
  /**
   * `REELAY_DATABASE_URL`: `postgres://…` keeps tasks, keys and the schedule in that PostgreSQL
   * database, which many processes on many machines share. Default: the SQLite file
   * `<REELAY_DATA_DIR>/reelay.sqlite`, which one process owns.
   */
  databaseUrl?: string;
  /** `REELAY_DATABASE_POOL` (default 10): connections per process to PostgreSQL. */
  databasePool: number;
  /**
   * `REELAY_DATABASE_TIMEOUT_MS` (default 30000): on PostgreSQL, a statement running longer is
   * cancelled by the server; one with no answer 2 s after that (a stalled network) fails and its
   * connection is closed; a wait for a connection lasts this long too, kept within 1 s and 10 s.
   * Each fails with a clear error in the log, and the request with the dialect's server error.
   */
  databaseTimeoutMs: number;
  /** `REELAY_METRICS` (default `off`): `on` serves Prometheus metrics at `/metrics`, without a key (bind to a private address). */
  metrics: boolean;
  /**
   * `REELAY_DASHBOARD` (default `on`): the web dashboard at `/dashboard`, where this process serves
   * the API (role `api` or `all`); `off` leaves it out.
   */
  dashboard: boolean;
  /**
   * `REELAY_OPERATOR_KEYS` (default none): a comma list of key ids (`reelay keys list`,
   * `key_…`) whose dashboard sessions see every tenant's tasks. Example: `key_3f2a9c01b7de`.
   */
  operatorKeys: string[];
  /** `REELAY_ENGINE_CONCURRENCY` (default 64): engine steps (submits, polls, renders) in progress at once. */
  engineConcurrency: number;
  /** `REELAY_ENGINE_DOWNLOADS` (default 16): downloads of finished jobs' videos at once, beside the steps. */
  engineDownloads: number;
  /** `LOG_LEVEL` (default `info`). */
  logLevel: string;
  /**
   * `REELAY_CONFIG`: a JSON file of providers and model routes (see README, "Providers and
   * routing"). Without it, every model renders locally. Keys come from the environment variables
   * the file names.
   */
  configFile?: string;
  routing: RoutingConfig;
  /** `REELAY_RESULT_MAX_BYTES` (default 2 GiB): the largest video downloaded from an upstream. */
  resultMaxBytes: number;
}

export { ConfigError } from './config-error.js';

export const ROLES = ['api', 'engine', 'all'] as const;
export type Role = (typeof ROLES)[number];

type Env = Record<string, string | undefined>;

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function int(env: Env, name: string, def: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return n;
}

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, 'PORT', 8080);
  const host = env.HOST?.trim() || '127.0.0.1';
  const publicHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const hostPart = publicHost.includes(':') ? `[${publicHost}]` : publicHost;
  const tls = tlsFiles(env);
  const publicUrl = (env.REELAY_PUBLIC_URL?.trim() || `${tls ? 'https' : 'http'}://${hostPart}:${port}`).replace(/\/+$/, '');
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`REELAY_PUBLIC_URL is not a URL: "${publicUrl}"`);
  }
  const role = roleOf(env);
  const databaseUrl = env.REELAY_DATABASE_URL?.trim() || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`REELAY_DATABASE_URL must be a postgres:// URL, got "${databaseUrl.replace(/\/\/[^@/]*@/, '//…@')}"`);
  }
  const dataDir = resolve(env.REELAY_DATA_DIR?.trim() || './data');
  return {
    port,
    host,
    dataDir,
    ...storageOf(env, dataDir),
    apiKeys: list(env.REELAY_API_KEYS),
    publicUrl,
    ...(tls ? { tls } : {}),
    urlAllowlist: list(env.REELAY_URL_ALLOWLIST),
    retentionMs: int(env, 'REELAY_RETENTION_DAYS', 14, 1) * 86_400_000,
    idempotencyTtlMs: int(env, 'REELAY_IDEMPOTENCY_TTL_HOURS', 24, 24) * 3_600_000,
    keyCreatesPerMinute: int(env, 'REELAY_KEY_CREATES_PER_MINUTE', 0, 0),
    keyMaxInFlight: int(env, 'REELAY_KEY_MAX_IN_FLIGHT', 0, 0),
    taskDeadlineMs: int(env, 'REELAY_TASK_DEADLINE_SECONDS', 1800, 1) * 1000,
    errorSleepMs: int(env, 'REELAY_ERROR_SLEEP_MS', 5000),
    maxRetries: int(env, 'REELAY_MAX_RETRIES', 3),
    leaseMs: int(env, 'REELAY_LEASE_MS', 30_000, 1000),
    bodyLimitBytes: int(env, 'REELAY_BODY_LIMIT_BYTES', 8 * 1024 * 1024, 1024),
    imageMaxBytes: int(env, 'REELAY_IMAGE_MAX_BYTES', 10 * 1024 * 1024, 1024),
    callbackTimeoutMs: int(env, 'REELAY_CALLBACK_TIMEOUT_MS', 15_000, 100),
    callbackMaxAttempts: int(env, 'REELAY_CALLBACK_MAX_ATTEMPTS', 10, 1),
    callbackBackoffMs: env.REELAY_CALLBACK_BACKOFF_MS?.trim() ? int(env, 'REELAY_CALLBACK_BACKOFF_MS', 5000, 10) : undefined,
    renderDelayMs: int(env, 'REELAY_RENDER_DELAY_MS', 0),
    renderConcurrency: int(env, 'REELAY_RENDER_CONCURRENCY', 1, 1),
    blockedWords: env.REELAY_BLOCKED_WORDS === undefined ? ['nsfw'] : list(env.REELAY_BLOCKED_WORDS),
    ffmpegPath: env.REELAY_FFMPEG?.trim() || undefined,
    ffprobePath: env.REELAY_FFPROBE?.trim() || undefined,
    role,
    engine: role !== 'api',
    ...(databaseUrl ? { databaseUrl } : {}),
    databasePool: int(env, 'REELAY_DATABASE_POOL', 10, 1),
    databaseTimeoutMs: int(env, 'REELAY_DATABASE_TIMEOUT_MS', 30_000, 100),
    engineConcurrency: int(env, 'REELAY_ENGINE_CONCURRENCY', 64, 1),
    engineDownloads: int(env, 'REELAY_ENGINE_DOWNLOADS', 16, 1),
    metrics: (env.REELAY_METRICS?.trim() || 'off') === 'on',
    dashboard: onOff(env, 'REELAY_DASHBOARD', true),
    operatorKeys: list(env.REELAY_OPERATOR_KEYS),
    logLevel: env.LOG_LEVEL?.trim() || 'info',
    ...(env.REELAY_CONFIG?.trim() ? { configFile: resolve(env.REELAY_CONFIG.trim()) } : {}),
    routing: env.REELAY_CONFIG?.trim() ? loadRoutingFile(resolve(env.REELAY_CONFIG.trim()), env) : defaultRouting(),
    resultMaxBytes: int(env, 'REELAY_RESULT_MAX_BYTES', 2 * 1024 * 1024 * 1024, 1024),
  };
}

/** `REELAY_STORAGE`, `REELAY_S3_ENDPOINT` and `REELAY_FILES`, checked (see `Config`). */
function storageOf(env: Env, dataDir: string): Pick<Config, 'storage' | 's3Endpoint' | 'filesMode'> {
  const raw = env.REELAY_STORAGE?.trim() || join(dataDir, 'results');
  let spec;
  try {
    spec = parseStoreSpec(raw);
  } catch (e) {
    throw new ConfigError(`REELAY_STORAGE: ${(e as Error).message}`);
  }
  const storage = spec.kind === 'local' ? spec.root : raw;
  const s3Endpoint = env.REELAY_S3_ENDPOINT?.trim() || undefined;
  if (s3Endpoint) {
    if (spec.kind !== 's3') throw new ConfigError(`REELAY_S3_ENDPOINT is set but REELAY_STORAGE is not an s3:// URL (results go to the folder ${spec.root}): set REELAY_STORAGE=s3://bucket/prefix, or unset REELAY_S3_ENDPOINT`);
    try {
      s3OptionsFromEnv({ REELAY_S3_ENDPOINT: s3Endpoint });
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  }
  const files = env.REELAY_FILES?.trim() || 'proxy';
  if (files !== 'proxy' && files !== 'redirect') throw new ConfigError(`REELAY_FILES must be proxy or redirect, got "${files}"`);
  return { storage, ...(s3Endpoint ? { s3Endpoint } : {}), filesMode: files };
}

/** `on` or `off` (any case); the default when unset or empty. */
function onOff(env: Env, name: string, fallback: boolean): boolean {
  const v = env[name]?.trim().toLowerCase();
  if (!v) return fallback;
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new ConfigError(`${name} must be on or off, got "${env[name]}"`);
}

function roleOf(env: Env): Role {
  const raw = env.REELAY_ROLE?.trim();
  if (raw) {
    if (!(ROLES as readonly string[]).includes(raw)) throw new ConfigError(`REELAY_ROLE must be one of ${ROLES.join(', ')}, got "${raw}"`);
    return raw as Role;
  }
  return (env.REELAY_ENGINE?.trim() || 'on') === 'off' ? 'api' : 'all';
}

/**
 * The TLS files, read and parsed here so that a wrong one stops the start with its name rather
 * than failing inside the server: both or neither, readable PEM, and a key that matches.
 */
function tlsFiles(env: Env): Config['tls'] {
  const cert = env.REELAY_TLS_CERT?.trim();
  const key = env.REELAY_TLS_KEY?.trim();
  if (!cert && !key) return undefined;
  if (!cert || !key) {
    throw new ConfigError(`${cert ? 'REELAY_TLS_CERT' : 'REELAY_TLS_KEY'} is set without ${cert ? 'REELAY_TLS_KEY' : 'REELAY_TLS_CERT'}: set both (PEM files) to serve HTTPS, or neither`);
  }
  const read = (name: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${name}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const certFile = resolve(cert);
  const keyFile = resolve(key);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(read('REELAY_TLS_CERT', certFile));
  } catch (e) {
    throw e instanceof ConfigError ? e : new ConfigError(`REELAY_TLS_CERT: ${certFile} is not a PEM certificate`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(read('REELAY_TLS_KEY', keyFile));
  } catch (e) {
    throw e instanceof ConfigError ? e : new ConfigError(`REELAY_TLS_KEY: ${keyFile} is not a PEM private key (an encrypted key is not supported)`);
  }
  if (!certificate.checkPrivateKey(privateKey)) throw new ConfigError(`REELAY_TLS_KEY (${keyFile}) is not the key of the certificate in REELAY_TLS_CERT (${certFile})`);
  return { certFile, keyFile };
}
