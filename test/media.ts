import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { locateBinaries, run } from '../src/media/ffmpeg.js';
import { probe, type ProbeResult } from '../src/media/probe.js';

export const binaries = locateBinaries();

/** Makes a PNG test image of the given size. */
export async function makePng(dir: string, name: string, w: number, h: number, pattern = 'testsrc'): Promise<string> {
  const file = join(dir, name);
  await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `${pattern}=s=${w}x${h}`, '-frames:v', '1', file]);
  return file;
}

/** Downloads a URL to a file and probes it. */
export async function downloadAndProbe(url: string, dir: string, name: string): Promise<ProbeResult & { bytes: Buffer; contentType: string | null }> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return { ...(await probe(binaries.ffprobe, file)), bytes, contentType: res.headers.get('content-type') };
}

/** Checks codec, frame size and the video stream's own duration (±150 ms). */
export function videoShape(p: ProbeResult): { codec: string; size: string; seconds: number } | null {
  return p.video ? { codec: p.video.codec, size: `${p.video.width}x${p.video.height}`, seconds: Math.round(p.video.durationMs / 250) / 4 } : null;
}

/**
 * The frame at `seconds`, shrunk to `width` pixels wide (16:9, 32 by default) in grayscale: enough
 * to tell two pictures apart (a wider one shows a slow zoom).
 */
export async function frameAt(file: string, seconds: number, width = 32): Promise<Buffer> {
  const { spawnSync } = await import('node:child_process');
  const height = Math.round((width * 9) / 16);
  const out = spawnSync(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-ss', seconds.toFixed(3), '-i', file, '-frames:v', '1', '-vf', `scale=${width}:${height},format=gray`, '-f', 'rawvideo', '-'], { maxBuffer: 1 << 22 });
  if (out.status !== 0 || out.stdout.length !== width * height) throw new Error(`no frame at ${seconds}s of ${file}: ${out.stderr.toString()}`);
  return out.stdout;
}

/** Mean absolute difference of two `frameAt` frames, 0 (the same) to 255. */
export function frameDistance(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}
