#!/usr/bin/env node
import './node-check.js';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { registerRemoteCommands } from './cli/remote.js';
import { ConfigError, ROLES, loadConfig } from './config.js';
import type { ApiKeyRow, Store } from './store/port.js';

// The gateway's own parts are imported by the commands that use them: `reelay generate` and the
// other commands that talk to a gateway over HTTP start without loading the server.
const server = () => import('./reelay.js');
const stores = () => import('./store/open.js');

// A usage error (an unknown flag, a value outside its choices, a missing argument) exits 2, as a
// bad setting does; help and --version exit 0. Set before any command, so every one inherits it.
const program = new Command('reelay')
  .description('Self-hosted gateway for AI video generation')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

function config(over: Record<string, string | undefined> = {}) {
  try {
    return loadConfig({ ...process.env, ...over });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`reelay: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
}

program
  .command('serve', { isDefault: true })
  .description('start the gateway (configuration from the environment; see README)')
  .addOption(new Option('--role <role>', 'what this process does: api (HTTP only), engine (runs tasks only) or all; overrides REELAY_ROLE').choices(ROLES))
  .action(async (o: { role?: string }) => {
    const cfg = config(o.role ? { REELAY_ROLE: o.role } : {});
    const [{ createLogger, startReelay }, { backendOf }] = await Promise.all([server(), stores()]);
    const log = createLogger(cfg.logLevel);
    const reelay = await startReelay(cfg, log);
    await reelay.app.listen({ port: cfg.port, host: cfg.host });
    if (reelay.firstKey) {
      process.stdout.write(
        `\nNo API key existed, so Reelay created one. It is shown only this once:\n\n    ${reelay.firstKey}\n\n` +
          `Use it as "Authorization: Bearer <key>"${cfg.dashboard && cfg.role !== 'engine' ? `, or paste it at ${cfg.publicUrl}/dashboard to sign in` : ''}.\n` +
          `Make a video from a terminal: REELAY_API_KEY=<key> npx reelay generate "a lighthouse at dusk".\n` +
          `Manage keys with "reelay keys create|list|revoke". API reference: ${cfg.publicUrl}/docs\n\n`,
      );
    }
    log.info({ url: cfg.publicUrl, role: cfg.role, store: backendOf(cfg), dataDir: cfg.dataDir }, 'reelay is serving');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'draining: new tasks are refused while running steps finish');
      void reelay.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('sim')
  .description('start the upstream simulator: kie, kkiai-style and the other upstream APIs on their real paths, with scripted timing and faults')
  .option('-p, --port <port>', 'port to listen on', '8090')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--duration <ms>', 'how long each job takes', '3000')
  .option('--faults <spec>', 'fault rates, e.g. "5xx=0.1,429=0.05,stall=0.01" (see README)', '')
  .option('--retry-after <seconds>', 'Retry-After of the 429 fault', '2')
  .option('--hang <ms>', 'how long the timeout fault holds a request', '120000')
  .option('--video-seconds <s>', 'length of the served videos', '8')
  .option('--small', 'serve a few-kB test pattern instead of a rendered scene (load tests)')
  .option('--keys <keys>', 'comma-separated keys to accept (default: any key)', '')
  .option('--dir <dir>', 'where the sample videos are made', '')
  .option('--scenario <file>', 'a JSON scenario: the settings above, plus per-upstream timing and faults (see README)')
  .action(async (o: Record<string, string>) => {
    const { startSim } = await import('./sim/index.js');
    try {
      const sim = await startSim(o);
      console.log(`reelay sim listening on ${sim.url}`);
      const stop = () => void sim.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    } catch (e) {
      console.error(`reelay sim: ${(e as Error).message}`);
      process.exit(2);
    }
  });

program
  .command('migrate')
  .description('apply the pending database migrations and exit (serve also does at start; safe while other processes run)')
  .action(async () => {
    const cfg = config();
    const { backendOf, openStore } = await stores();
    const s = await openStore(cfg);
    try {
      const n = await s.migrate();
      console.log(n === 0 ? `the ${backendOf(cfg)} database is up to date` : `applied ${n} migration(s) to the ${backendOf(cfg)} database`);
    } catch (e) {
      console.error(`reelay migrate: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      await s.close();
    }
  });

program
  .command('copy-to-postgres')
  .description('copy the embedded SQLite database (tasks, keys, attempts, artifacts, callbacks owed, idempotency keys, webhook secrets) into an empty PostgreSQL database; stop the gateway first')
  .option('--from <file>', 'the SQLite file (default: <REELAY_DATA_DIR>/reelay.sqlite)')
  .option('--to <url>', 'the PostgreSQL database (default: REELAY_DATABASE_URL)')
  .action(async (o: { from?: string; to?: string }) => {
    const cfg = config();
    const to = o.to ?? cfg.databaseUrl;
    if (!to) {
      console.error('reelay copy-to-postgres: name the database with --to postgres://… or REELAY_DATABASE_URL');
      process.exit(2);
    }
    const { copySqliteToPostgres } = await import('./store/copy.js');
    const from = o.from ?? join(cfg.dataDir, 'reelay.sqlite');
    try {
      const counts = await copySqliteToPostgres(from, to);
      console.log(`copied ${Object.entries(counts).map(([table, n]) => `${n} ${table}`).join(', ')} from ${from}`);
      console.log('Start the gateway with REELAY_DATABASE_URL set to that database; the result files stay in the data folder.');
    } catch (e) {
      console.error(`reelay copy-to-postgres: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  });

const keys = program.command('keys').description('manage API keys (each key is its own tenant)');

/** The configured store, migrated (a key command may be the first thing run against a new database). */
async function store() {
  const { openStore } = await stores();
  return openStore(config(), { migrate: true });
}

keys
  .command('create')
  .description('create a key and print it (the only time it is shown)')
  .option('-n, --name <name>', 'a label for the key', '')
  .action(async (opts: { name: string }) => {
    const s = await store();
    const { createKey } = await import('./auth/keys.js');
    const { key, row } = await createKey(s, opts.name);
    console.log(key);
    console.error(`created ${row.id} (tenant ${row.tenantId})`);
    await s.close();
  });

keys
  .command('list')
  .description('list keys (prefixes only; keys are stored hashed)')
  .action(async () => {
    const s = await store();
    const rows = await s.listKeys();
    console.log(['id', 'prefix', 'tenant', 'source', 'name', 'created', 'revoked'].join('\t'));
    for (const k of rows) {
      console.log([k.id, `${k.prefix}…`, k.tenantId, k.source, k.name, new Date(k.createdAt).toISOString(), k.revokedAt ? new Date(k.revokedAt).toISOString() : '-'].join('\t'));
    }
    await s.close();
  });

keys
  .command('revoke <idOrPrefix>')
  .description('revoke a key by its id or its prefix')
  .action(async (idOrPrefix: string) => {
    const s = await store();
    const n = await s.revokeKey(idOrPrefix, Date.now());
    await s.close();
    if (n === 0) {
      console.error(`no live key matches "${idOrPrefix}"`);
      process.exit(1);
    }
    console.log(`revoked ${n} key(s)`);
  });

/** The live key with this id or prefix, and the store it was read from; exits 1 when there is none. */
async function liveKey(idOrPrefix: string): Promise<{ s: Store; key: ApiKeyRow }> {
  const s = await store();
  const key = (await s.listKeys()).find((k) => k.revokedAt === null && (k.id === idOrPrefix || k.prefix === idOrPrefix));
  if (!key) {
    await s.close();
    console.error(`no live key matches "${idOrPrefix}"`);
    process.exit(1);
  }
  return { s, key };
}

keys
  .command('webhook-secret <idOrPrefix>')
  .description("print the key's webhook signing secret (whsec_…); --rotate makes a new one, the old one signing beside it for 24 h")
  .option('--rotate', 'make a new secret')
  .action(async (idOrPrefix: string, opts: { rotate?: boolean }) => {
    const { s, key } = await liveKey(idOrPrefix);
    const { ROTATION_OVERLAP_MS, newWebhookSecret } = await import('./engine/signing.js');
    const now = Date.now();
    const secrets = opts.rotate
      ? await s.rotateWebhookSecret(key.tenantId, newWebhookSecret(), now, ROTATION_OVERLAP_MS)
      : await s.webhookSecrets(key.tenantId, now, newWebhookSecret());
    await s.close();
    console.log(secrets[0]);
    if (secrets.length > 1) console.error(`${secrets.length - 1} older secret(s) still sign beside it until their overlap ends`);
  });

keys
  .command('credit <idOrPrefix> <amount>')
  .description("add credits to the key's balance (a negative amount takes them away); the first top-up makes the key metered")
  .option('--note <text>', 'why, kept in the ledger')
  .action(async (idOrPrefix: string, amount: string, opts: { note?: string }) => {
    if (!/^-?[0-9]{1,15}$/.test(amount)) {
      console.error(`the amount must be a whole number of credits, got "${amount}"`);
      process.exit(2);
    }
    const { s, key } = await liveKey(idOrPrefix);
    const account = await s.addCredits(key.tenantId, Number(amount), Date.now(), opts.note ?? null);
    await s.close();
    console.log(String(account.balance));
  });

keys
  .command('ledger <idOrPrefix>')
  .description("print the key's balance and its ledger, newest first: top-ups, and each metered task's reservation and close")
  .option('--limit <n>', 'entries at most', '50')
  .action(async (idOrPrefix: string, opts: { limit: string }) => {
    const { s, key } = await liveKey(idOrPrefix);
    const [account, entries] = await Promise.all([s.creditAccount(key.tenantId), s.listLedger(key.tenantId, { limit: Math.max(1, Number(opts.limit) || 50) })]);
    await s.close();
    console.log(account ? `balance ${account.balance}` : 'not metered (no credit account)');
    console.log(['id', 'at', 'kind', 'amount', 'charged', 'task', 'note'].join('\t'));
    for (const e of entries) console.log([e.id, new Date(e.at).toISOString(), e.kind, e.amount, e.charged ?? '-', e.taskId ?? '-', e.note ?? '-'].join('\t'));
  });

registerRemoteCommands(program);

await program.parseAsync();
