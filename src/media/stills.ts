/**
 * ffmpeg arguments for stills made from a video: a thumbnail (one frame) and a spritesheet (a grid
 * of frames spread over the video, as OpenAI's `variant=spritesheet`). Pure; see `app/previews.ts`.
 */

/** One frame from `atSeconds`, scaled to at most `maxSide` pixels on its long side. */
export function thumbnailArgs(inFile: string, outFile: string, format: 'webp' | 'jpg', atSeconds: number, maxSide = 1280): string[] {
  const codec = format === 'webp' ? ['-c:v', 'libwebp', '-quality', '80', '-f', 'webp'] : ['-c:v', 'mjpeg', '-q:v', '3', '-f', 'image2'];
  return [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-ss', atSeconds.toFixed(3), '-i', inFile,
    '-frames:v', '1',
    // The long side to at most maxSide, the other one kept in proportion (even); written without
    // force_divisible_by, which the bundled ffmpeg 4.1 does not have.
    '-vf', `scale='if(gte(iw,ih),min(${maxSide},iw),-2)':'if(gte(iw,ih),-2,min(${maxSide},ih))'`,
    ...codec, outFile,
  ];
}

/** The grid of a spritesheet: `cols` × `rows` frames, each `tileWidth` pixels wide. */
export const SPRITESHEET = { cols: 5, rows: 5, tileWidth: 256 } as const;

/**
 * `cols × rows` frames taken evenly over `durationSeconds`, each scaled to `tileWidth` wide, in one
 * JPEG, left to right and top to bottom.
 */
export function spritesheetArgs(inFile: string, outFile: string, durationSeconds: number, grid = SPRITESHEET): string[] {
  const frames = grid.cols * grid.rows;
  const rate = frames / Math.max(durationSeconds, 0.1);
  return [
    '-hide_banner', '-loglevel', 'error', '-y', '-i', inFile,
    '-frames:v', '1',
    '-vf', `fps=${rate.toFixed(6)},scale=${grid.tileWidth}:-2,tile=${grid.cols}x${grid.rows}`,
    '-c:v', 'mjpeg', '-q:v', '4', '-f', 'image2', outFile,
  ];
}
