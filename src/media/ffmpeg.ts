import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

const require = createRequire(import.meta.url);

export interface Binaries {
  ffmpeg: string;
  ffprobe: string;
  /** Where each binary came from: `env`, `system` or `bundled`. */
  source: { ffmpeg: string; ffprobe: string };
  /** A font file for captions (DejaVu Sans, shipped as an npm package). */
  font: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function bundled(pkg: string): string {
  return (require(pkg) as { path: string }).path;
}

function pick(name: 'ffmpeg' | 'ffprobe', override: string | undefined): [string, string] {
  if (override) return [override, 'env'];
  const system = onPath(name);
  if (system) return [system, 'system'];
  return [bundled(name === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe'), 'bundled'];
}

/**
 * Finds ffmpeg and ffprobe: an explicit path first (`REELAY_FFMPEG`, `REELAY_FFPROBE`), then the
 * system's on PATH, then the static builds shipped in `@ffmpeg-installer` / `@ffprobe-installer`, so
 * a machine without ffmpeg still renders.
 */
export function locateBinaries(overrides: { ffmpeg?: string; ffprobe?: string } = {}): Binaries {
  const [ffmpeg, ffmpegSource] = pick('ffmpeg', overrides.ffmpeg);
  const [ffprobe, ffprobeSource] = pick('ffprobe', overrides.ffprobe);
  const font = require.resolve('@fontsource/dejavu-sans/files/dejavu-sans-latin-400-normal.woff');
  return { ffmpeg, ffprobe, font, source: { ffmpeg: ffmpegSource, ffprobe: ffprobeSource } };
}

export class FfmpegError extends Error {
  override name = 'FfmpegError';
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface RunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Records the child's pid here while it runs. A process that died with `kill -9` leaves its
   * ffmpeg running as an orphan; the next run with the same pid file kills that orphan first, so
   * two encoders never write the same output.
   */
  pidFile?: string;
}

/** Kills the process recorded in `pidFile` if it is still alive and still runs `marker`. */
export function killOrphan(pidFile: string, marker: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8'));
  } catch {
    return;
  }
  try {
    // Linux: check the command line, so a recycled pid of an unrelated process is left alone.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes(marker)) process.kill(pid, 'SIGKILL');
  } catch {
    // gone already, or no /proc
  }
  rmSync(pidFile, { force: true });
}

/** Runs a binary to completion; resolves with its stdout, rejects with the tail of stderr. */
export function run(bin: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    if (opts.signal?.aborted) {
      reject(new FfmpegError(`${bin}: aborted before it started`, ''));
      return;
    }
    // An abort kills the child outright and settles only once it is gone: an ffmpeg asked to stop
    // with SIGTERM while it is still setting up may yet open and finish its output file, after its
    // caller removed the job's files.
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', kill, { once: true });
    if (opts.pidFile && child.pid) writeFileSync(opts.pidFile, String(child.pid));
    const forget = () => {
      opts.signal?.removeEventListener('abort', kill);
      if (opts.pidFile) rmSync(opts.pidFile, { force: true });
    };
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs).unref()
      : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      forget();
      reject(new FfmpegError(`${bin}: ${e.message}`, err));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      forget();
      if (opts.signal?.aborted) reject(new FfmpegError(`${bin}: aborted`, err));
      else if (code === 0) resolvePromise(Buffer.concat(out).toString());
      else {
        const last = err.trim().split('\n').slice(-3).join(' | ');
        reject(new FfmpegError(`${bin} exited with ${code ?? signal}: ${last}`, err));
      }
    });
  });
}

/** Escapes a value for use inside a single-quoted ffmpeg filter option. */
export function filterPath(p: string): string {
  return p.replace(/\\/g, '/').replace(/'/g, "'\\''").replace(/:/g, '\\:');
}
