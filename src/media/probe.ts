import { run } from './ffmpeg.js';

export interface ProbeResult {
  container: string;
  durationMs: number;
  video: { codec: string; width: number; height: number } | null;
  audio: { codec: string } | null;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number }[];
}

/** Reads container, duration and stream codecs of a media file with ffprobe. */
export async function probe(ffprobe: string, file: string): Promise<ProbeResult> {
  const out = await run(
    ffprobe,
    ['-v', 'error', '-show_entries', 'format=format_name,duration:stream=codec_type,codec_name,width,height', '-of', 'json', file],
    { timeoutMs: 30_000 },
  );
  const json = JSON.parse(out) as FfprobeJson;
  const streams = json.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video');
  const a = streams.find((s) => s.codec_type === 'audio');
  return {
    container: json.format?.format_name ?? '',
    durationMs: Math.round(Number(json.format?.duration ?? 0) * 1000),
    video: v ? { codec: v.codec_name ?? '', width: v.width ?? 0, height: v.height ?? 0 } : null,
    audio: a ? { codec: a.codec_name ?? '' } : null,
  };
}
