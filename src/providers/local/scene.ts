import { createHash } from 'node:crypto';
import type { AspectRatio } from '../../core/task.js';
import { filterPath } from '../../media/ffmpeg.js';

/** What the local renderer is asked to make. */
export interface SceneInput {
  prompt: string;
  seed: number;
  aspectRatio: AspectRatio;
  durationSeconds: number;
  /** Local paths of the input images (0–3). */
  images: string[];
  mode: 'text' | 'frames' | 'reference';
  watermark?: string;
  /** A file holding the caption text (drawtext reads it, so no escaping is needed). */
  captionFile: string;
  /** A file holding the watermark text, when there is one. */
  watermarkFile?: string;
  font: string;
}

export const FPS = 24;

export function frameSize(aspect: AspectRatio): { w: number; h: number } {
  return aspect === '9:16' ? { w: 720, h: 1280 } : { w: 1280, h: 720 };
}

/** A 32-bit number derived from the prompt and the seed: the same pair always gives the same scene. */
export function sceneHash(prompt: string, seed: number): number {
  return createHash('sha256').update(`${seed}\u0000${prompt}`).digest().readUInt32BE(0);
}

/** The animated backgrounds a text-only scene picks from. */
export const BACKDROPS = ['mandelbrot', 'life', 'cellauto', 'plasma'] as const;

function backdrop(kind: (typeof BACKDROPS)[number], h: number, w: number, hh: number, dur: number): string {
  const size = `s=${w}x${hh}`;
  switch (kind) {
    case 'mandelbrot': {
      const x = -0.75 + ((h % 1000) / 1000) * 0.1;
      return `mandelbrot=${size}:rate=${FPS}:start_x=${x.toFixed(4)}:start_y=${(((h >> 10) % 100) / 1000).toFixed(3)}:start_scale=3:end_scale=0.3:end_pts=${dur * FPS}`;
    }
    case 'life':
      return `life=${size}:rate=${FPS}:seed=${h % 2147483647}:ratio=0.2:mold=10:life_color=#${(h & 0xffffff).toString(16).padStart(6, '0')}:death_color=#101018:mold_color=#203040,scale=${w}:${hh}`;
    case 'cellauto':
      return `cellauto=${size}:rate=${FPS}:rule=${[18, 30, 90, 110, 150][h % 5]}:seed=${h % 2147483647}:random_fill_ratio=0.5,format=yuv420p`;
    case 'plasma':
      // A moving interference pattern computed per pixel; cheap enough at 720p with a downscaled source.
      return (
        `nullsrc=s=${Math.round(w / 4)}x${Math.round(hh / 4)}:rate=${FPS},` +
        `geq=r='128+127*sin(X/${7 + (h % 5)}+T*1.3)':g='128+127*sin(Y/${9 + (h % 7)}+T*0.9)':b='128+127*sin((X+Y)/${11 + (h % 3)}+T*1.7)',` +
        `scale=${w}:${hh}`
      );
  }
}

/**
 * Builds the ffmpeg arguments for one render. Pure: the same input gives the same arguments.
 * - text only: an animated backdrop picked from the prompt and seed, tinted by them, with the
 *   prompt as a caption;
 * - one image: a slow zoom and pan over it;
 * - two images: the first frame dissolving into the last;
 * - three (reference) images: each in turn, dissolving into the next.
 * Always H.264 (yuv420p) with an AAC track: a two-tone chord picked from the seed.
 */
export function sceneArgs(input: SceneInput, outFile: string): string[] {
  const { w, h } = frameSize(input.aspectRatio);
  const dur = input.durationSeconds;
  const hash = sceneHash(input.prompt, input.seed);
  const args = ['-hide_banner', '-loglevel', 'error', '-y'];
  const filters: string[] = [];
  let last: string;

  if (input.images.length === 0) {
    const kind = BACKDROPS[hash % BACKDROPS.length]!;
    args.push('-f', 'lavfi', '-t', String(dur), '-i', backdrop(kind, hash, w, h, dur));
    const caption =
      `drawtext=fontfile='${filterPath(input.font)}':textfile='${filterPath(input.captionFile)}':` +
      `fontsize=${Math.round(h / 20)}:fontcolor=white:line_spacing=8:box=1:boxcolor=black@0.55:boxborderw=14:` +
      `x=(w-tw)/2:y=h-th-${Math.round(h / 12)}`;
    filters.push(`[0:v]format=yuv420p,hue=h=${hash % 360}+t*${8 + (hash % 20)}:s=1.2,${caption}[v]`);
    last = 'v';
  } else {
    // Each image lasts the whole video (the first one is the base the others dissolve onto: an
    // overlay ends when its base ends). Cover the frame at twice the size for a smoother zoom,
    // crop, then zoom in slowly.
    const frames = dur * FPS;
    input.images.forEach((file, i) => {
      args.push('-loop', '1', '-framerate', String(FPS), '-t', String(dur), '-i', file);
      const pan = (hash >> (i * 3)) % 3;
      const panX = pan === 0 ? `iw/2-(iw/zoom/2)` : pan === 1 ? `(iw-iw/zoom)*on/${frames}` : `(iw-iw/zoom)*(1-on/${frames})`;
      filters.push(
        `[${i}:v]scale=${w * 2}:${h * 2}:force_original_aspect_ratio=increase,crop=${w * 2}:${h * 2},setsar=1,` +
          `zoompan=z='1+0.18*on/${frames}':x='${panX}':y='ih/2-(ih/zoom/2)':d=1:s=${w}x${h}:fps=${FPS},format=yuva420p[img${i}]`,
      );
    });
    last = 'img0';
    // Image i (i ≥ 1) fades in over one second, centred on i/n of the way through.
    const step = dur / input.images.length;
    for (let i = 1; i < input.images.length; i++) {
      const start = (step * i - 0.5).toFixed(2);
      filters.push(`[img${i}]fade=in:st=0:d=1:alpha=1,setpts=PTS+${start}/TB[fade${i}]`);
      filters.push(`[${last}][fade${i}]overlay=eof_action=pass[mix${i}]`);
      last = `mix${i}`;
    }
    filters.push(`[${last}]format=yuv420p,trim=duration=${dur}[v]`);
    last = 'v';
  }

  if (input.watermarkFile) {
    filters.push(
      `[${last}]drawtext=fontfile='${filterPath(input.font)}':textfile='${filterPath(input.watermarkFile)}':` +
        `fontsize=${Math.round(h / 30)}:fontcolor=white@0.8:box=1:boxcolor=black@0.35:boxborderw=6:x=w-tw-24:y=24[wm]`,
    );
    last = 'wm';
  }

  const f1 = 220 + (hash % 220);
  const f2 = Math.round(f1 * 1.5);
  args.push('-f', 'lavfi', '-t', String(dur), '-i', `aevalsrc=0.15*sin(2*PI*${f1}*t)*(0.6+0.4*sin(PI*t/2))+0.1*sin(2*PI*${f2}*t):s=48000:c=stereo`);
  const audioIndex = input.images.length === 0 ? 1 : input.images.length;
  args.push(
    '-filter_complex', filters.join(';'),
    '-map', `[${last}]`, '-map', `${audioIndex}:a`,
    '-t', String(dur), '-r', String(FPS),
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '96k',
    '-movflags', '+faststart', '-f', 'mp4', outFile,
  );
  return args;
}

/** Wraps a caption to lines of at most `width` characters, at most `maxLines` lines. */
export function wrapCaption(text: string, width = 42, maxLines = 3): string {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && (line + ' ' + word).length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
    if (lines.length === maxLines) break;
  }
  if (lines.length < maxLines && line) lines.push(line);
  const joined = lines.slice(0, maxLines);
  const used = joined.join(' ').length;
  if (used < text.replace(/\s+/g, ' ').trim().length) {
    joined[joined.length - 1] = `${joined[joined.length - 1]!.slice(0, width - 3)}...`;
  }
  return joined.join('\n');
}

/** Arguments to scale a video to a higher rendition (1080p or 4k), keeping the audio. */
export function upscaleArgs(inFile: string, outFile: string, w: number, h: number): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-y', '-i', inFile,
    '-vf', `scale=${w}:${h}:flags=lanczos,setsar=1`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '22', '-pix_fmt', 'yuv420p',
    '-c:a', 'copy', '-movflags', '+faststart', '-f', 'mp4', outFile,
  ];
}
