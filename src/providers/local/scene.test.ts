import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { binaries, makePng, videoShape } from '../../../test/media.js';
import { tmpDir } from '../../../test/tmp.js';
import { run } from '../../media/ffmpeg.js';
import { probe } from '../../media/probe.js';
import { BACKDROPS, type SceneInput, sceneArgs, sceneHash, wrapCaption } from './scene.js';

test('the scene depends only on prompt and seed', () => {
  assert.equal(sceneHash('a cat', 1), sceneHash('a cat', 1));
  assert.notEqual(sceneHash('a cat', 1), sceneHash('a cat', 2));
  const base: SceneInput = { prompt: 'a cat', seed: 10001, aspectRatio: '16:9', durationSeconds: 8, images: [], mode: 'text', captionFile: '/c', font: '/f' };
  assert.deepEqual(sceneArgs(base, '/o.mp4'), sceneArgs({ ...base }, '/o.mp4'));
  const kinds = new Set<string>();
  for (let seed = 10000; seed < 10040; seed++) {
    const graph = sceneArgs({ ...base, seed }, '/o.mp4').join(' ');
    for (const k of BACKDROPS) if (graph.includes(k === 'plasma' ? 'geq=' : `${k}=`)) kinds.add(k);
  }
  assert.equal(kinds.size, BACKDROPS.length, 'seeds reach every backdrop');
});

test('captions wrap and end with an ellipsis when cut', () => {
  assert.equal(wrapCaption('short prompt'), 'short prompt');
  const long = wrapCaption('word '.repeat(60), 20, 2);
  assert.equal(long.split('\n').length, 2);
  assert.ok(long.endsWith('...'));
});

describe('every image mode renders the whole duration (real ffmpeg)', () => {
  const dir = tmpDir();
  const imgs: string[] = [];
  before(async () => {
    imgs.push(await makePng(dir, 'a.png', 640, 360), await makePng(dir, 'b.png', 360, 640, 'smptebars'), await makePng(dir, 'c.png', 500, 500, 'rgbtestsrc'));
    writeFileSync(join(dir, 'cap.txt'), 'a caption');
    writeFileSync(join(dir, 'wm.txt'), 'MyBrand');
  });
  const cases: [string, number, SceneInput['mode'], SceneInput['aspectRatio'], string][] = [
    ['text', 0, 'text', '16:9', '1280x720'],
    ['one image', 1, 'frames', '9:16', '720x1280'],
    ['first and last frame', 2, 'frames', '16:9', '1280x720'],
    ['three references, watermark', 3, 'reference', '16:9', '1280x720'],
  ];
  for (const [name, n, mode, aspectRatio, size] of cases) {
    test(name, async () => {
      const out = join(dir, `${name.replace(/\W+/g, '-')}.mp4`);
      const input: SceneInput = {
        prompt: 'a lighthouse', seed: 12345, aspectRatio, durationSeconds: 4, images: imgs.slice(0, n), mode,
        captionFile: join(dir, 'cap.txt'), font: binaries.font, ...(n === 3 ? { watermark: 'MyBrand', watermarkFile: join(dir, 'wm.txt') } : {}),
      };
      await run(binaries.ffmpeg, sceneArgs(input, out));
      const p = await probe(binaries.ffprobe, out);
      assert.deepEqual(videoShape(p), { codec: 'h264', size, seconds: 4 });
      assert.equal(p.audio?.codec, 'aac');
    });
  }
});
