import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateBinaries } from '../media/ffmpeg.js';
import { parseFaultRates } from './faults.js';
import { buildSim } from './server.js';

export interface RunningSim {
  url: string;
  close(): Promise<void>;
}

function number(v: string | undefined, name: string, def: number): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0, got "${v}"`);
  return n;
}

/** Starts the simulator from command-line style options (all strings). */
export async function startSim(o: Record<string, string | undefined>): Promise<RunningSim> {
  const { app } = await buildSim({
    durationMs: number(o.duration, 'duration', 3000),
    faults: parseFaultRates(o.faults ?? ''),
    retryAfterSeconds: number(o.retryAfter, 'retry-after', 2),
    hangMs: number(o.hang, 'hang', 120_000),
    videoSeconds: Math.max(1, number(o.videoSeconds, 'video-seconds', 8)),
    ...(o.small ? { videoSize: 'small' as const } : {}),
    dir: o.dir || mkdtempSync(join(tmpdir(), 'reelay-sim-')),
    binaries: locateBinaries(),
    keys: (o.keys ?? '').split(',').map((k) => k.trim()).filter(Boolean),
  });
  const host = o.host || '127.0.0.1';
  await app.listen({ port: number(o.port, 'port', 8090), host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, close: () => app.close() };
}
