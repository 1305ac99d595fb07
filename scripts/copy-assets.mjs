// After tsc: copies non-TypeScript assets (SQL migrations, the dashboard's stylesheet) from src/
// to dist/src/, keeping their paths, and makes the bin executable (npm may have linked it before
// the first build).
import { chmodSync, cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.sql') || p.endsWith('.css')) cpSync(p, join('dist', p));
  }
}
walk('src');
chmodSync('dist/src/cli.js', 0o755);
