// Runs the README's test command on another Node.js version with nothing but the npm registry: the
// runtime comes from its `node-<platform>-<arch>` package (the binary and its headers, so
// better-sqlite3 12 compiles for it with no other download), and the working tree is copied outside
// this checkout, so this checkout's node_modules (built for the Node running this script) is
// neither changed nor found by the copy.
//
// Usage: node scripts/test-on-node.mjs <version> [test file filters…]
//        node scripts/test-on-node.mjs --install <version>   (only fetch the runtime; prints its path)
// The runtime is kept in .cache/node/<version>, the copy in <tmpdir>/reelay-node-<version>.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const installOnly = args[0] === '--install';
if (installOnly) args.shift();
const version = args.shift();
if (!version || !/^\d+\.\d+\.\d+$/.test(version)) {
  console.error('usage: node scripts/test-on-node.mjs [--install] <version, e.g. 24.21.0> [test filters…]');
  process.exit(2);
}

function run(cmd, argv, opts = {}) {
  const res = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

/** Installs node-<platform>-<arch>@version under .cache/node/<version>; returns the package's folder. */
function installNode(v) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const prefix = join(root, '.cache', 'node', v);
  const dir = join(prefix, 'node_modules', pkg);
  const bin = join(dir, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (!existsSync(bin)) {
    mkdirSync(prefix, { recursive: true });
    const status = run('npm', ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${v}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (status !== 0 || !existsSync(bin)) throw new Error(`could not install ${pkg}@${v} from the npm registry`);
  }
  return { dir, bin };
}

const node = installNode(version);
if (installOnly) {
  console.log(node.bin);
  process.exit(0);
}

// The tree as git sees it: tracked files and new ones that are not ignored (no node_modules, dist, data).
const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
if (listed.status !== 0) {
  console.error('test-on-node: this needs a git checkout (it copies the files git lists)');
  process.exit(2);
}
const copy = join(tmpdir(), `reelay-node-${version}`);
rmSync(copy, { recursive: true, force: true });
for (const f of listed.stdout.split('\0')) {
  if (f && existsSync(join(root, f))) cpSync(join(root, f), join(copy, f), { recursive: false });
}

const env = {
  ...process.env,
  PATH: `${dirname(node.bin)}${process.platform === 'win32' ? ';' : ':'}${process.env.PATH ?? ''}`,
  npm_config_nodedir: node.dir, // node-gyp builds against this runtime's headers, no download
};
console.log(`\n== Node ${version}: npm ci, then npm test, in ${copy}\n`);
let status = run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: copy, env });
if (status === 0) status = run('npm', ['test', '--', ...args], { cwd: copy, env });
process.exit(status);
