import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { binaries, makePng } from '../../test/media.js';
import { tmpDir } from '../../test/tmp.js';
import { run } from './ffmpeg.js';
import { Mp4Scanner, TruncatedMediaError, probeMp4 } from './mp4.js';
import { ffprobeFile } from './probe.js';

test('the in-process MP4 probe agrees with ffprobe; a truncated MP4 is refused; non-MP4s are left to ffprobe', async () => {
  const dir = tmpDir();
  const make = async (name: string, size: string, extra: string[]) => {
    const out = join(dir, name);
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=s=${size}:d=2`, '-f', 'lavfi', '-i', 'sine=d=2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', ...extra, out]);
    return out;
  };
  const files = [await make('moov-last.mp4', '320x180', []), await make('faststart.mp4', '180x320', ['-movflags', '+faststart']), await make('video-only.mp4', '64x36', ['-an'])];
  for (const file of files) {
    const mine = probeMp4(file);
    const theirs = await ffprobeFile(binaries.ffprobe, file);
    assert.ok(mine, file);
    assert.equal(mine.video?.codec, theirs.video?.codec);
    assert.equal(mine.video?.width, theirs.video?.width);
    assert.equal(mine.video?.height, theirs.video?.height);
    assert.equal(mine.audio?.codec, theirs.audio?.codec);
    assert.ok(Math.abs(mine.durationMs - theirs.durationMs) <= 50, `${file}: ${mine.durationMs} vs ${theirs.durationMs}`);
    assert.ok(Math.abs((mine.video?.durationMs ?? 0) - (theirs.video?.durationMs ?? 0)) <= 50);
  }
  const bytes = readFileSync(files[1]!);
  writeFileSync(join(dir, 'truncated.mp4'), bytes.subarray(0, Math.floor(bytes.length * 0.7)));
  assert.throws(() => probeMp4(join(dir, 'truncated.mp4')), TruncatedMediaError, 'a cut-off download is not a video');
  assert.equal(probeMp4(await makePng(dir, 'x.png', 8, 8)), undefined);
  writeFileSync(join(dir, 'junk.mp4'), 'not a video at all');
  assert.equal(probeMp4(join(dir, 'junk.mp4')), undefined);

  // The streaming scanner (downloads) answers exactly as the file probe, however the bytes are cut.
  const scan = (data: Buffer, chunk: number) => {
    const s = new Mp4Scanner();
    for (let at = 0; at < data.length; at += chunk) s.push(data.subarray(at, at + chunk));
    return s.result();
  };
  for (const file of [...files, join(dir, 'junk.mp4'), await makePng(dir, 'y.png', 8, 8)]) {
    const data = readFileSync(file);
    const expected = probeMp4(file);
    for (const chunk of [1, 3, 7, 8, 9, 15, 16, 17, 1000, 65536, data.length]) assert.deepEqual(scan(data, chunk), expected, `${file} in chunks of ${chunk}`);
  }
  for (const chunk of [1, 9, 4096, bytes.length]) {
    assert.throws(() => scan(bytes.subarray(0, Math.floor(bytes.length * 0.7)), chunk), TruncatedMediaError, `cut off, chunks of ${chunk}`);
  }
  // A small box closing the file (8 to 15 bytes: less than the 16 header bytes the scanner reads ahead).
  const tail = Buffer.concat([bytes, Buffer.from([0, 0, 0, 12, 0x66, 0x72, 0x65, 0x65, 1, 2, 3, 4])]);
  writeFileSync(join(dir, 'tail.mp4'), tail);
  assert.ok(probeMp4(join(dir, 'tail.mp4')));
  assert.deepEqual(scan(tail, 5), probeMp4(join(dir, 'tail.mp4')));
  assert.deepEqual(scan(tail, tail.length), probeMp4(join(dir, 'tail.mp4')));
});
