import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

// The client is its own package: what it imports and what its package.json promises, read as text.
const ROOT = fileURLToPath(new URL('../../packages/client/', import.meta.url));

test('the client package has no dependencies and exports its own build', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.name, '@reelay/client');
  assert.equal(pkg.type, 'module');
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), []);
  assert.equal(pkg.peerDependencies, undefined);
  assert.deepEqual(pkg.exports['.'], { types: './dist/index.d.ts', import: './dist/index.js' });
});

test('the client imports only its own files, and node:fs for download alone; nothing of the server', () => {
  const files = readdirSync(join(ROOT, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  assert.ok(files.includes('index.ts'));
  const outside: string[] = [];
  for (const f of files) {
    const text = readFileSync(join(ROOT, 'src', f), 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
      const target = m[1]!;
      if (/^\.\/[\w-]+\.js$/.test(target)) continue;
      if (f === 'download.ts' && target === 'node:fs/promises') continue;
      outside.push(`${f} → ${target}`);
    }
  }
  assert.deepEqual(outside, []);
});
