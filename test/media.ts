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
