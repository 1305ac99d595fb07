// Copies non-TypeScript assets (SQL migrations) from src/ to dist/src/, keeping their paths.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.sql')) cpSync(p, join('dist', p));
  }
}
walk('src');
