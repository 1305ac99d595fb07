// A throwaway PostgreSQL cluster for the tests: `scripts/run-tests.mjs` starts one per `npm test`
// run (`startCluster`), hands its address to the test processes through the environment, and
// stops it afterwards; each test asks for a database of its own (`freshDatabase`).
//
// The cluster lives in a short folder under /tmp (a unix socket path holds about 107 bytes) and
// listens on its socket only, no TCP. It is tuned for throwaway data: no fsync, no synchronous
// commit. initdb and postgres refuse to run as root, so as root they run as the `postgres` user.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

/** Where a cluster is: what the test processes get in `REELAY_TEST_PG_*`. */
export interface Cluster {
  /** The cluster's folder: its socket, its log (`log`) and its data (`data/`). */
  dir: string;
  port: number;
  /** The folder of initdb, pg_ctl and postgres. */
  bin: string;
  /** The maintenance database (`postgres`), through the socket. */
  url: string;
}

export interface RunningCluster extends Cluster {
  /** Stops the server at once and removes its folder. Synchronous, so exit handlers can call it. */
  stop(): void;
}

/** initdb under load on 2 cores takes 3 s and more: the limits are generous on purpose. */
const INITDB_TIMEOUT_MS = 120_000;
const PG_CTL_WAIT_S = 60;
const DEFAULT_PORT = 5432;

/** `postgres://postgres@/<database>?host=<dir>&port=<port>`: a socket connection, no password. */
export function clusterUrl(dir: string, port: number, database = 'postgres'): string {
  return `postgres://postgres@/${database}?host=${encodeURIComponent(dir)}&port=${port}`;
}

/** The newest `/usr/lib/postgresql/<v>/bin` (Debian, Ubuntu), else `pg_config --bindir`. */
export function findPgBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  const r = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir && existsSync(join(dir, 'initdb')) ? dir : undefined;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** As root: the `postgres` user's ids (initdb and postgres refuse root). Otherwise: ourselves. */
function runAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0) {
    throw new Error('running as root, and initdb and postgres refuse root: a "postgres" user is needed to run them (useradd --system --no-create-home postgres)');
  }
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function run(c: Cluster, tool: string, args: string[], user: RunAs, timeoutMs: number): void {
  const r = spawnSync(join(c.bin, tool), args, { ...user, cwd: c.dir, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${tool} ${args.join(' ')} failed (${why}):\n${r.stderr}${r.stdout}${logTail(c)}`);
  }
}

function logTail(c: Cluster): string {
  try {
    return `\n--- ${c.dir}/log ---\n${readFileSync(join(c.dir, 'log'), 'utf8').split('\n').slice(-20).join('\n')}`;
  } catch {
    return '';
  }
}

// (pg_ctl restart takes no log file, and a server writing to pg_ctl's pipe would keep it open:
// a restart is a stop and a start.)
function ctlArgs(c: Cluster, action: 'start' | 'stop', mode: 'fast' | 'immediate' = 'fast'): string[] {
  const data = join(c.dir, 'data');
  if (action === 'stop') return ['-D', data, '-m', mode, '-w', '-t', String(PG_CTL_WAIT_S), 'stop'];
  const server = `-p ${c.port} -k ${c.dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  // REELAY_TEST_PG_STATS=1 (benchmarks): pg_stat_statements counts each statement's calls and time.
  const stats = process.env.REELAY_TEST_PG_STATS ? ' -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all' : '';
  return ['-D', data, '-l', join(c.dir, 'log'), '-w', '-t', String(PG_CTL_WAIT_S), '-o', server + stats, 'start'];
}

/** The postmaster's pid, from its pid file, when one is there. */
function postmasterPid(c: Cluster): number | undefined {
  try {
    const pid = Number(readFileSync(join(c.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes a cluster in a new folder under /tmp and starts it; throws (leaving no server and no
 * folder behind) when it cannot. Takes a few seconds.
 */
export function startCluster(opts: { port?: number } = {}): RunningCluster {
  const bin = findPgBin();
  if (!bin) throw new Error('no PostgreSQL binaries (looked in /usr/lib/postgresql/*/bin and pg_config --bindir); apt-get install postgresql-15');
  const user = runAs();
  const dir = mkdtempSync('/tmp/rpg-');
  const port = opts.port ?? DEFAULT_PORT;
  const c: Cluster = { dir, port, bin, url: clusterUrl(dir, port) };
  let ok = false;
  try {
    if (user.uid !== undefined) chownSync(dir, user.uid, user.gid!);
    run(c, 'initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8'], user, INITDB_TIMEOUT_MS);
    run(c, 'pg_ctl', ctlArgs(c, 'start'), user, (PG_CTL_WAIT_S + 30) * 1000);
    watchdog(c, user);
    ok = true;
    return { ...c, stop: () => stopCluster(c) };
  } finally {
    // A start that failed half-way must not leave a server running.
    if (!ok) stopCluster(c);
  }
}

/** Stops the cluster at once (`-m immediate`: throwaway data) and removes its folder. */
export function stopCluster(c: Cluster): void {
  if (existsSync(join(c.dir, 'data', 'postmaster.pid'))) {
    let user: RunAs = {};
    try {
      user = runAs();
    } catch {
      // No postgres user: no server could have started as it; the pid file is checked below.
    }
    spawnSync(join(c.bin, 'pg_ctl'), ctlArgs(c, 'stop', 'immediate'), { ...user, cwd: '/', stdio: 'ignore', timeout: (PG_CTL_WAIT_S + 10) * 1000 });
    const pid = postmasterPid(c);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL'); // pg_ctl could not stop it; its backends exit when it dies
      } catch {
        // Already gone.
      }
    }
  }
  rmSync(c.dir, { recursive: true, force: true });
}

/**
 * A detached process that stops the cluster should the process that started it die without
 * stopping it (SIGKILL, a crash): the last line of defence against an orphaned server. It exits
 * by itself once the cluster's folder is gone.
 */
function watchdog(c: Cluster, user: RunAs): void {
  const script = `
    const { spawnSync } = require('node:child_process');
    const { existsSync, rmSync } = require('node:fs');
    const [parent, pgCtl, args, dir, user] = JSON.parse(process.argv[1]);
    setInterval(() => {
      if (!existsSync(dir)) process.exit(0);
      try { process.kill(parent, 0); return; } catch {}
      spawnSync(pgCtl, args, { ...user, cwd: '/', stdio: 'ignore', timeout: 60000 });
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }, 1000);`;
  const args = JSON.stringify([process.pid, join(c.bin, 'pg_ctl'), ctlArgs(c, 'stop', 'immediate'), c.dir, user]);
  spawn(process.execPath, ['-e', script, args], { detached: true, stdio: 'ignore' }).unref();
}

/** The environment that hands a cluster to the test processes. */
export function clusterEnv(c: Cluster): Record<string, string> {
  return { REELAY_TEST_PG_URL: c.url, REELAY_TEST_PG_DIR: c.dir, REELAY_TEST_PG_PORT: String(c.port), REELAY_TEST_PG_BIN: c.bin };
}

/** The run's cluster, from the environment `clusterEnv` made; undefined outside such a run. */
export function runCluster(): Cluster | undefined {
  const { REELAY_TEST_PG_URL: url, REELAY_TEST_PG_DIR: dir, REELAY_TEST_PG_PORT: port, REELAY_TEST_PG_BIN: bin } = process.env;
  return url && dir && port && bin ? { url, dir, port: Number(port), bin } : undefined;
}

const required = () => !!process.env.REELAY_TEST_REQUIRE_PG && process.env.REELAY_TEST_REQUIRE_PG !== '0';

/**
 * Why PostgreSQL tests are skipped in this run (no cluster), or false when they run. With
 * `REELAY_TEST_REQUIRE_PG` set they are never skipped: without a cluster they fail.
 */
export function pgSkipReason(): string | false {
  if (process.env.REELAY_TEST_PG_URL || required()) return false;
  return 'no PostgreSQL test cluster: run the tests through scripts/run-tests.mjs (npm test) on a machine with PostgreSQL binaries';
}

let made = 0;

/**
 * The URL of a new, empty (not migrated) database in the run's server (`REELAY_TEST_PG_URL`: the
 * cluster run-tests started, or a server of your own), never shared with another test; undefined
 * when there is no server. Throws when there is none and `REELAY_TEST_REQUIRE_PG` is set.
 *
 * The cluster commits asynchronously (`synchronous_commit=off`): a crash of the server
 * (`pgControl('restart', 'immediate')`) loses the last fraction of a second of commits. A test that
 * crashes the server and counts on what was committed asks for `durable: true`: its database
 * commits synchronously (to the OS; still no fsync, which only an OS crash would need).
 */
export async function freshDatabase(opts: { durable?: boolean } = {}): Promise<string | undefined> {
  const url = process.env.REELAY_TEST_PG_URL;
  if (!url) {
    if (required()) throw new Error('REELAY_TEST_REQUIRE_PG is set but this run has no PostgreSQL cluster (see what scripts/run-tests.mjs printed at start)');
    return undefined;
  }
  const name = `t${process.pid}_${++made}`;
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', () => {}); // a server restarted by a test must not crash the process
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    if (opts.durable) await admin.query(`ALTER DATABASE ${name} SET synchronous_commit = on`);
  } finally {
    await admin.end();
  }
  return withDatabase(url, name);
}

/** The same server's URL with another database: `postgres://…/<database>?…`. */
function withDatabase(url: string, database: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^/?]*)(\/[^?]*)?/, `$1/${database}`);
}

/**
 * Stops, starts or restarts the run's server in the middle of a test; resolves once pg_ctl says
 * it is done (a restart takes well under a second when idle). `fast` ends sessions cleanly;
 * `immediate` is a crash, and the start after it a recovery (see `freshDatabase`'s `durable`).
 * Every test file running at that moment shares the server: they see their connections drop. A
 * test that restarts a server should rather start its own (`startCluster`) and pass it here.
 */
export async function pgControl(action: 'start' | 'stop' | 'restart', mode: 'fast' | 'immediate' = 'fast', cluster?: Cluster): Promise<void> {
  const c = cluster ?? runCluster();
  if (!c) throw new Error('pgControl: this run has no PostgreSQL cluster');
  const ctl = (a: 'start' | 'stop') =>
    promisify(execFile)(join(c.bin, 'pg_ctl'), ctlArgs(c, a, mode), { ...runAs(), cwd: c.dir, timeout: (PG_CTL_WAIT_S + 30) * 1000 });
  if (action !== 'start') await ctl('stop');
  if (action !== 'stop') await ctl('start');
}

/**
 * The two stores a real server is tested on: the embedded SQLite file, and a fresh database of
 * the test cluster (skipped where there is none). `env` is what the server is started with.
 */
export const SERVER_BACKENDS: { name: string; skip: string | false; env(): Promise<Record<string, string>> }[] = [
  { name: 'SQLite', skip: false, env: async () => ({}) },
  { name: 'PostgreSQL', skip: pgSkipReason(), env: async () => ({ REELAY_DATABASE_URL: (await freshDatabase())! }) },
];
