import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

// The imports of src/ (tests left out), read as text: every `import … from`, `export … from`,
// side-effect `import '…'` and `import('…')`, type-only ones included. A part is a folder directly
// under src/, or a file there. ARCHITECTURE.md ("Layers") explains the order.
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Lowest first. A part may import only parts of a lower rank. */
const LAYERS: string[][] = [
  // The TypeScript client (packages/client/src): it imports nothing of src/ (test/client-package.test.ts).
  ['client'],
  ['core', 'config-error', 'node-version', 'metrics'],
  ['media', 'net', 'store', 'storage'],
  ['results'],
  ['providers'],
  ['routing', 'auth'],
  ['config'],
  ['app'],
  ['engine', 'http'],
  ['dialects'],
  ['dashboard'],
  ['sim'],
  ['reelay', 'node-check'],
  ['index', 'cli'],
];
const RANK = new Map(LAYERS.flatMap((parts, rank) => parts.map((p) => [p, rank] as const)));

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g;
const partOf = (file: string) => {
  const rel = relative(SRC, file);
  if (rel.startsWith('../packages/client/src/')) return 'client';
  if (rel.startsWith('..')) return `outside src/: ${rel}`;
  const [first, ...rest] = rel.split('/');
  return rest.length ? first! : first!.replace(/\.ts$/, '');
};

/** Every relative import of src/, once: the importing file and the file it names (both relative to src/). */
function imports(): { file: string; target: string }[] {
  const out: { file: string; target: string }[] = [];
  for (const file of sources(SRC)) {
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), (m[1] ?? m[2] ?? m[3])!).replace(/\.js$/, '.ts');
      out.push({ file: relative(SRC, file), target: relative(SRC, target) });
    }
  }
  return out;
}
const IMPORTS = imports();

test('every part of src/ has a layer, and every import points down a layer', () => {
  const all = IMPORTS.map((i) => ({ ...i, from: partOf(join(SRC, i.file)), to: partOf(join(SRC, i.target)) })).filter((a) => a.from !== a.to);
  assert.ok(all.length > 50, `the imports were read (${all.length})`);
  const parts = new Set(sources(SRC).map(partOf));
  const unplaced = [...parts].filter((p) => !RANK.has(p));
  assert.deepEqual(unplaced, [], 'parts without a layer: add them to LAYERS');
  const up = all.filter((a) => !RANK.has(a.to) || RANK.get(a.to)! >= RANK.get(a.from)!).map((a) => `${a.file} → ${a.to}`);
  assert.deepEqual(up, [], 'imports that point up or sideways');
});

test('no cycle between the files of src/, type-only imports included', () => {
  // The layers already keep the parts of src/ acyclic; this catches a cycle inside one part (two
  // files that import each other, or a list and the members that import the list back).
  const edges = new Map<string, Set<string>>();
  for (const { file, target } of IMPORTS) (edges.get(file) ?? edges.set(file, new Set()).get(file)!).add(target);
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    path.push(n);
    for (const m of edges.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...path.slice(path.indexOf(m)), m].join(' → '));
      else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, 'done');
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
  assert.deepEqual(cycles, []);
});
