import { run } from './ffmpeg.js';
import { probeMp4 } from './mp4.js';
import type { ProbeResult } from './types.js';

export type { ProbeResult } from './types.js';

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number; duration?: string }[];
}

/**
 * Reads container, duration and stream codecs of a media file: in-process for an MP4 (see
 * `probeMp4`), with ffprobe for anything else.
 */
export async function probe(ffprobe: string, file: string): Promise<ProbeResult> {
  return probeMp4(file) ?? ffprobeFile(ffprobe, file);
}

/** The same, always with ffprobe. */
export async function ffprobeFile(ffprobe: string, file: string): Promise<ProbeResult> {
  const out = await run(
    ffprobe,
    ['-v', 'error', '-show_entries', 'format=format_name,duration:stream=codec_type,codec_name,width,height,duration', '-of', 'json', file],
    { timeoutMs: 30_000 },
  );
  const json = JSON.parse(out) as FfprobeJson;
  const streams = json.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video');
  const a = streams.find((s) => s.codec_type === 'audio');
  return {
    container: json.format?.format_name ?? '',
    durationMs: Math.round(Number(json.format?.duration ?? 0) * 1000),
    video: v ? { codec: v.codec_name ?? '', width: v.width ?? 0, height: v.height ?? 0, durationMs: Math.round(Number(v.duration ?? 0) * 1000) } : null,
    audio: a ? { codec: a.codec_name ?? '' } : null,
  };
}
