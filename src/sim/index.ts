import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateBinaries } from '../media/ffmpeg.js';
import { type FaultRates, parseFaultRates } from './faults.js';
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

/** A scenario file: the same settings as the flags, plus per-upstream timing and faults. */
interface Scenario {
  duration?: number;
  faults?: string | FaultRates;
  retryAfter?: number;
  hang?: number;
  videoSeconds?: number;
  keys?: string[];
  upstreams?: Record<string, { duration?: number; faults?: string | FaultRates }>;
}

const SCENARIO_KEYS = ['duration', 'faults', 'retryAfter', 'hang', 'videoSeconds', 'keys', 'upstreams'];

/** Fault rates given as `"5xx=0.1,…"` or as `{"5xx": 0.1}`. */
function rates(v: string | FaultRates | undefined, where: string): FaultRates {
  if (v === undefined) return {};
  try {
    return parseFaultRates(typeof v === 'string' ? v : Object.entries(v).map(([k, r]) => `${k}=${r}`).join(','));
  } catch (e) {
    throw new Error(`scenario ${where}: ${(e as Error).message}`);
  }
}

/** Reads a scenario file; a wrong key or value is an error naming it. */
export function readScenario(path: string): Scenario {
  let s: Scenario;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as Scenario;
  } catch (e) {
    throw new Error(`--scenario ${path}: ${(e as Error).message}`);
  }
  for (const k of Object.keys(s)) if (!SCENARIO_KEYS.includes(k)) throw new Error(`--scenario ${path}: unknown setting "${k}" (known: ${SCENARIO_KEYS.join(', ')})`);
  return s;
}

/** Starts the simulator from command-line style options (all strings), and an optional scenario file. */
export async function startSim(o: Record<string, string | undefined>): Promise<RunningSim> {
  const sc: Scenario = o.scenario ? readScenario(o.scenario) : {};
  const { app } = await buildSim({
    durationMs: sc.duration ?? number(o.duration, 'duration', 3000),
    faults: sc.faults !== undefined ? rates(sc.faults, 'faults') : parseFaultRates(o.faults ?? ''),
    retryAfterSeconds: sc.retryAfter ?? number(o.retryAfter, 'retry-after', 2),
    hangMs: sc.hang ?? number(o.hang, 'hang', 120_000),
    videoSeconds: Math.max(1, sc.videoSeconds ?? number(o.videoSeconds, 'video-seconds', 8)),
    ...(o.small ? { videoSize: 'small' as const } : {}),
    dir: o.dir || mkdtempSync(join(tmpdir(), 'reelay-sim-')),
    binaries: locateBinaries(),
    keys: sc.keys ?? (o.keys ?? '').split(',').map((k) => k.trim()).filter(Boolean),
    upstreams: Object.fromEntries(Object.entries(sc.upstreams ?? {}).map(([u, v]) => [u, { ...(v.duration !== undefined ? { durationMs: v.duration } : {}), ...(v.faults !== undefined ? { faults: rates(v.faults, `upstreams.${u}.faults`) } : {}) }])),
  });
  const host = o.host || '127.0.0.1';
  await app.listen({ port: number(o.port, 'port', 8090), host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, close: () => app.close() };
}
