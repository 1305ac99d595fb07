import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) {
    try {
      rmSync(d, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A child still writing (an encoder being killed) must not fail the test file at exit.
    }
  }
});

/** A fresh temporary folder, removed when the test process exits (safe to call inside hooks). */
export function tmpDir(prefix = 'reelay-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
