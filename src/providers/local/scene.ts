import { createHash } from 'node:crypto';
import type { AspectRatio, TaskSpec } from '../../core/task.js';
import { filterPath } from '../../media/ffmpeg.js';

/** A frame size in pixels. */
export interface Size {
  w: number;
  h: number;
}

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
  /**
   * The size to render at (see `targetSize`). Absent: the 720p size of `aspectRatio` (job files
   * written before renders were made at the final size, and the simulator's samples).
   */
  size?: Size;
  /** A file holding the caption text (drawtext reads it, so no escaping is needed). */
  captionFile: string;
  /** A file holding the watermark text, when there is one. */
  watermarkFile?: string;
  font: string;
}

/** The video an extend continues, as `extendArgs` needs it (probed before the render). */
export interface SourceVideo {
  file: string;
  /** Its video stream's duration: the joined video is this long, then the new part. */
  durationSeconds: number;
  /** Whether it has an audio track (one without gets silence, so the join has one layout). */
  hasAudio: boolean;
}

export const FPS = 24;
/** The audio layout of every render, and of a continued source once joined: 48 kHz stereo. */
const AUDIO_FORMAT = 'aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo';

export function frameSize(aspect: AspectRatio): Size {
  return aspect === '9:16' ? { w: 720, h: 1280 } : { w: 1280, h: 720 };
}

/**
 * The size a task's video is rendered at: its final size. `spec.frame` when set (an exact size
 * such as 1024x1792); else, with `upsample`, 1920x1080 for 1080p and 3840x2160 for 4k (9:16
 * portrait, any other aspect landscape); else the 720p size. The engine finds the video already at
 * the final size and does not upscale it.
 */
export function targetSize(spec: Pick<TaskSpec, 'aspectRatio' | 'resolution' | 'upsample' | 'frame'>): Size {
  if (spec.frame) return { w: spec.frame.width, h: spec.frame.height };
  const portrait = spec.aspectRatio === '9:16';
  if (!spec.upsample || spec.resolution === '720p') return frameSize(portrait ? '9:16' : '16:9');
  const [long, short] = spec.resolution === '4k' ? [3840, 2160] : [1920, 1080];
  return portrait ? { w: short, h: long } : { w: long, h: short };
}

/** The largest frame side the local renderer accepts (4k portrait is 2160x3840). */
export const MAX_SIDE = 4096;

/** Why a size cannot be rendered (H.264 yuv420p needs even sides), or undefined when it can. */
export function sizeProblem({ w, h }: Size): string | undefined {
  for (const side of [w, h]) {
    if (!Number.isInteger(side) || side < 64 || side > MAX_SIDE || side % 2 !== 0) {
      return `frame size ${w}x${h}: each side must be an even number of pixels from 64 to ${MAX_SIDE}`;
    }
  }
  return undefined;
}

const even = (n: number) => Math.max(2, 2 * Math.round(n / 2));

/**
 * Where a generated backdrop is computed: the frame, shrunk so that its short side is at most
 * 720 pixels (the 720p renders' size). Mandelbrot, life and plasma cost per pixel: at 4k, nine
 * times as many, they would take most of the render. Scaled up in the same graph they keep their
 * look (the fractal a little softer, the cells bigger); the caption and the watermark are drawn
 * after the scale, at the frame size, so the text is sharp.
 */
export function backdropSize({ w, h }: Size): Size {
  const k = Math.min(1, 720 / Math.min(w, h));
  return k === 1 ? { w, h } : { w: even(w * k), h: even(h * k) };
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
      // A moving interference pattern computed per pixel; cheap enough with a downscaled source.
      return (
        `nullsrc=s=${Math.round(w / 4)}x${Math.round(hh / 4)}:rate=${FPS},` +
        `geq=r='128+127*sin(X/${7 + (h % 5)}+T*1.3)':g='128+127*sin(Y/${9 + (h % 7)}+T*0.9)':b='128+127*sin((X+Y)/${11 + (h % 3)}+T*1.7)',` +
        `scale=${w}:${hh}`
      );
  }
}

/** Pixel measures (margins, borders, spacing) were chosen for a 720-pixel short side. */
const unit = ({ w, h }: Size) => Math.min(w, h) / 720;
const px = (size: Size, n: number) => Math.max(1, Math.round(n * unit(size)));

/**
 * The slow zoom and pan over one image, at the frame size. The image is read once (no `-loop`:
 * zoompan makes every frame of the clip from its one input frame), covered and cropped at
 * `zoomSource` scale, then zoomed in from 1 (so the first frame is the whole crop). Label
 * `[img<i>]`, yuva420p, `dur` long.
 */
function zoomChain(input: number, i: number, size: Size, dur: number, hash: number): string {
  const { w, h } = size;
  const frames = Math.round(dur * FPS);
  // Zooming into a larger copy hides the whole-pixel steps of zoompan's crop. At 2x below 4k; at 4k
  // a step is already a third of a 720p pixel, and a 7680x4320 source would triple the cost.
  const k = Math.max(w, h) >= 2560 ? 1 : 2;
  const pan = (hash >> (i * 3)) % 3;
  const panX = pan === 0 ? `iw/2-(iw/zoom/2)` : pan === 1 ? `(iw-iw/zoom)*on/${frames}` : `(iw-iw/zoom)*(1-on/${frames})`;
  return (
    `[${input}:v]trim=end_frame=1,scale=${w * k}:${h * k}:force_original_aspect_ratio=increase,crop=${w * k}:${h * k},setsar=1,` +
    `zoompan=z='1+0.18*on/${frames}':x='${panX}':y='ih/2-(ih/zoom/2)':d=${frames}:s=${w}x${h}:fps=${FPS},setsar=1,format=yuva420p[img${i}]`
  );
}

/** The images of a scene, dissolving into each other: `[v]`, yuv420p. Inputs from `first` on. */
function imageScene(images: string[], first: number, size: Size, dur: number, hash: number): { inputs: string[]; filters: string[] } {
  const inputs: string[] = [];
  const filters: string[] = [];
  images.forEach((file, i) => {
    inputs.push('-i', file);
    filters.push(zoomChain(first + i, i, size, dur, hash));
  });
  let last = 'img0';
  // Image i (i ≥ 1) fades in over one second, centred on i/n of the way through. Each image
  // lasts the whole video: the first is the base the others dissolve onto (an overlay ends when
  // its base ends).
  const step = dur / images.length;
  for (let i = 1; i < images.length; i++) {
    const start = (step * i - 0.5).toFixed(2);
    filters.push(`[img${i}]fade=in:st=0:d=1:alpha=1,setpts=PTS+${start}/TB[fade${i}]`);
    filters.push(`[${last}][fade${i}]overlay=eof_action=pass[mix${i}]`);
    last = `mix${i}`;
  }
  filters.push(`[${last}]format=yuv420p,trim=duration=${dur}[v]`);
  return { inputs, filters };
}

function watermarkFilter(input: SceneInput, size: Size, from: string, to: string): string {
  return (
    `[${from}]drawtext=fontfile='${filterPath(input.font)}':textfile='${filterPath(input.watermarkFile!)}':` +
    `fontsize=${Math.round(size.h / 30)}:fontcolor=white@0.8:box=1:boxcolor=black@0.35:boxborderw=${px(size, 6)}:` +
    `x=w-tw-${px(size, 24)}:y=${px(size, 24)}[${to}]`
  );
}

/** The chord of a scene, as an input: two tones picked from the seed, 48 kHz stereo. */
function chord(hash: number, dur: number): string[] {
  const f1 = 220 + (hash % 220);
  const f2 = Math.round(f1 * 1.5);
  return ['-f', 'lavfi', '-t', String(dur), '-i', `aevalsrc=0.15*sin(2*PI*${f1}*t)*(0.6+0.4*sin(PI*t/2))+0.1*sin(2*PI*${f2}*t):s=48000:c=stereo`];
}

/**
 * The x264 preset for a frame size: `veryfast` up to 1080p, as before; `superfast` above (4k, 9
 * times the pixels of 720p). Measured with `bench/render.ts` (2 cores, 8 s clips at 3840x2160):
 * - `superfast` took 0.6 of `veryfast`'s time (mandelbrot 17.3 s against 28.5, plasma 14.3 against
 *   21.2, one image 10.3 against 16.0) for 1.5 to 2.4 times the bytes (30.5 MB against 19.9,
 *   12.7 against 5.3, 9.9 against 4.3: 10 to 30 Mbit/s, ordinary for 4k);
 * - `ultrafast` was no faster than `superfast` (13.8 to 19.0 s: the filter graph is then the
 *   limit, not x264) for 2.3 to 6.5 times `veryfast`'s bytes, with CABAC and deblocking off.
 * Threads are left to their defaults (x264: 1.5 per core, frame threads; the graph beside it): the
 * renders used 1.9 CPU seconds per second on 2 cores, so more threads would gain nothing. With
 * `concurrency` above 1, renders share the cores anyway.
 */
export function presetFor({ w, h }: Size): string {
  return w * h > 1920 * 1080 ? 'superfast' : 'veryfast';
}

function encoderArgs(size: Size, dur: number, outFile: string): string[] {
  return [
    '-t', String(dur), '-r', String(FPS),
    '-c:v', 'libx264', '-preset', presetFor(size), '-crf', '23', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '96k', '-ar', '48000', '-ac', '2',
    '-movflags', '+faststart', '-f', 'mp4', outFile,
  ];
}

/**
 * Builds the ffmpeg arguments for one render, at `input.size`. Pure: the same input gives the same
 * arguments.
 * - text only: an animated backdrop picked from the prompt and seed, tinted by them, with the
 *   prompt as a caption (the backdrop computed at `backdropSize` and scaled up; the caption drawn
 *   at the frame size);
 * - one image: a slow zoom and pan over it;
 * - two images: the first frame dissolving into the last;
 * - three (reference) images: each in turn, dissolving into the next.
 * Always H.264 (yuv420p) with an AAC track: a two-tone chord picked from the seed.
 */
export function sceneArgs(input: SceneInput, outFile: string): string[] {
  const size = input.size ?? frameSize(input.aspectRatio);
  const { w, h } = size;
  const dur = input.durationSeconds;
  const hash = sceneHash(input.prompt, input.seed);
  const args = ['-hide_banner', '-loglevel', 'error', '-y'];
  const filters: string[] = [];
  let last = 'v';

  if (input.images.length === 0) {
    const kind = BACKDROPS[hash % BACKDROPS.length]!;
    const b = backdropSize(size);
    args.push('-f', 'lavfi', '-t', String(dur), '-i', backdrop(kind, hash, b.w, b.h, dur));
    const caption =
      `drawtext=fontfile='${filterPath(input.font)}':textfile='${filterPath(input.captionFile)}':` +
      `fontsize=${Math.round(h / 20)}:fontcolor=white:line_spacing=${px(size, 8)}:box=1:boxcolor=black@0.55:boxborderw=${px(size, 14)}:` +
      `x=(w-tw)/2:y=h-th-${Math.round(h / 12)}`;
    // The tint runs at the backdrop's size, before the scale: the same picture for fewer pixels.
    const up = b.w === w && b.h === h ? '' : `scale=${w}:${h}:flags=bicubic,setsar=1,`;
    filters.push(`[0:v]format=yuv420p,hue=h=${hash % 360}+t*${8 + (hash % 20)}:s=1.2,${up}${caption}[v]`);
  } else {
    const scene = imageScene(input.images, 0, size, dur, hash);
    args.push(...scene.inputs);
    filters.push(...scene.filters);
  }

  if (input.watermarkFile) {
    filters.push(watermarkFilter(input, size, last, 'wm'));
    last = 'wm';
  }

  args.push(...chord(hash, dur));
  const audioIndex = input.images.length === 0 ? 1 : input.images.length;
  args.push('-filter_complex', filters.join(';'), '-map', `[${last}]`, '-map', `${audioIndex}:a`, ...encoderArgs(size, dur, outFile));
  return args;
}

/**
 * Arguments to write the last frame of `sourceFile` to `pngFile`: decode its last second (less for
 * a shorter video) and keep overwriting the one image, so the last decoded frame stays.
 */
export function lastFrameArgs(sourceFile: string, pngFile: string, sourceSeconds: number): string[] {
  const tail = Math.min(1, Math.max(0.1, sourceSeconds)).toFixed(3);
  return [
    '-hide_banner', '-loglevel', 'error', '-y', '-sseof', `-${tail}`, '-i', sourceFile,
    '-map', '0:v:0', '-an', '-sn', '-dn', '-c:v', 'png', '-pix_fmt', 'rgb24', '-f', 'image2', '-update', '1', pngFile,
  ];
}

/**
 * Builds the ffmpeg arguments of an extend: `source` followed by a new part of
 * `input.durationSeconds`, as one video at `input.size`. `input.images` holds one image, the
 * source's last frame (`lastFrameArgs`): the new part is a one-image scene over it, which starts
 * at zoom 1 on the frame covered and cropped to the size, so the join does not jump when the
 * source has the frame's aspect. One pass: the new part is encoded once, joined by the concat
 * filter. The source is scaled to fit and padded to the size, at 24 fps, with its audio (or
 * silence) at 48 kHz stereo. The watermark, if any, marks the whole video.
 */
export function extendArgs(input: SceneInput, source: SourceVideo, outFile: string): string[] {
  if (input.images.length !== 1) throw new Error('an extend starts from one image: the last frame of its source');
  const size = input.size ?? frameSize(input.aspectRatio);
  const { w, h } = size;
  const dur = input.durationSeconds;
  const srcDur = source.durationSeconds;
  const hash = sceneHash(input.prompt, input.seed);
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-i', source.file];
  const part = imageScene(input.images, 1, size, dur, hash);
  args.push(...part.inputs, ...chord(hash, dur));
  const fit = `min(${w}/iw\\,${h}/ih)`;
  const filters = [
    `[0:v:0]scale=w='2*trunc(iw*${fit}/2)':h='2*trunc(ih*${fit}/2)',pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2,setsar=1,` +
      `fps=${FPS},format=yuv420p,trim=duration=${srcDur},setpts=PTS-STARTPTS[sv]`,
    source.hasAudio
      ? `[0:a:0]aresample=48000,${AUDIO_FORMAT},apad,atrim=duration=${srcDur},asetpts=PTS-STARTPTS[sa]`
      : `anullsrc=r=48000:cl=stereo,${AUDIO_FORMAT},atrim=duration=${srcDur}[sa]`,
    ...part.filters,
    `[2:a]${AUDIO_FORMAT}[na]`,
    `[sv][sa][v][na]concat=n=2:v=1:a=1[cv][ca]`,
  ];
  let last = 'cv';
  if (input.watermarkFile) {
    filters.push(watermarkFilter(input, size, last, 'wm'));
    last = 'wm';
  }
  args.push('-filter_complex', filters.join(';'), '-map', `[${last}]`, '-map', '[ca]', ...encoderArgs(size, srcDur + dur, outFile));
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
    // Cover, then crop: a source of a slightly different shape (720x1280 to 1024x1792) is not stretched.
    '-vf', `scale=${w}:${h}:flags=lanczos:force_original_aspect_ratio=increase,crop=${w}:${h},setsar=1`,
    '-c:v', 'libx264', '-preset', presetFor({ w, h }), '-crf', '22', '-pix_fmt', 'yuv420p',
    '-c:a', 'copy', '-movflags', '+faststart', '-f', 'mp4', outFile,
  ];
}
