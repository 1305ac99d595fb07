import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { binaries, makePng, videoShape } from '../../../test/media.js';
import { tmpDir } from '../../../test/tmp.js';
import { run } from '../../media/ffmpeg.js';
import { probe } from '../../media/probe.js';
import { BACKDROPS, type SceneInput, backdropSize, extendArgs, lastFrameArgs, presetFor, sceneArgs, sceneHash, sizeProblem, targetSize, wrapCaption } from './scene.js';

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

test('targetSize: the final size, 720p without upsample, frame first', () => {
  const spec = { aspectRatio: '16:9' as const, resolution: '720p' as const, upsample: false };
  assert.deepEqual(targetSize(spec), { w: 1280, h: 720 });
  assert.deepEqual(targetSize({ ...spec, aspectRatio: '9:16' }), { w: 720, h: 1280 });
  assert.deepEqual(targetSize({ ...spec, resolution: '1080p' }), { w: 1280, h: 720 }, 'no upsample: 720p');
  assert.deepEqual(targetSize({ ...spec, resolution: '1080p', upsample: true }), { w: 1920, h: 1080 });
  assert.deepEqual(targetSize({ ...spec, resolution: '1080p', upsample: true, aspectRatio: '9:16' }), { w: 1080, h: 1920 });
  assert.deepEqual(targetSize({ ...spec, resolution: '4k', upsample: true }), { w: 3840, h: 2160 });
  assert.deepEqual(targetSize({ ...spec, resolution: '4k', upsample: true, aspectRatio: '9:16' }), { w: 2160, h: 3840 });
  assert.deepEqual(targetSize({ ...spec, resolution: '4k', upsample: true, aspectRatio: 'auto' }), { w: 3840, h: 2160 }, 'auto is landscape');
  assert.deepEqual(targetSize({ ...spec, upsample: true, frame: { width: 1024, height: 1792 } }), { w: 1024, h: 1792 });
  assert.deepEqual(targetSize({ ...spec, resolution: '4k', upsample: true, frame: { width: 1792, height: 1024 } }), { w: 1792, h: 1024 }, 'frame wins');
  assert.equal(sizeProblem({ w: 1024, h: 1792 }), undefined);
  assert.match(sizeProblem({ w: 1023, h: 1792 }) ?? '', /even/);
  assert.match(sizeProblem({ w: 8192, h: 4320 }) ?? '', /4096/);
});

describe('sceneArgs at the final size', () => {
  const base: SceneInput = { prompt: 'a cat', seed: 10001, aspectRatio: '16:9', durationSeconds: 8, images: [], mode: 'text', captionFile: '/c', font: '/f', watermarkFile: '/w' };
  const graph = (input: SceneInput) => {
    const args = sceneArgs(input, '/o.mp4');
    return { args, graph: args[args.indexOf('-filter_complex') + 1]!, lavfi: args.filter((a, i) => args[i - 1] === '-i').join(' ') };
  };

  test('without a size: 720p as before, nothing scaled', () => {
    const { graph: g, lavfi } = graph(base);
    assert.match(lavfi, /s=1280x720|s=320x180/);
    assert.doesNotMatch(g, /scale=1280:720:flags/);
    assert.match(g, /fontsize=36:/);
  });

  test('4k text: backdrop at 720p, scaled in the graph, then the caption and watermark at 4k', () => {
    for (let seed = 10000; seed < 10008; seed++) {
      const { args, graph: g, lavfi } = graph({ ...base, seed, size: { w: 3840, h: 2160 } });
      assert.match(lavfi, /s=(1280x720|320x180):/, 'the backdrop is computed small');
      assert.doesNotMatch(lavfi, /3840/);
      const scale = g.indexOf('scale=3840:2160');
      assert.ok(scale > 0 && scale < g.indexOf('drawtext'), 'scaled before any text');
      assert.ok(g.indexOf('hue=') < scale, 'tinted before the scale');
      assert.match(g, /fontsize=108:/, 'caption: h/20');
      assert.match(g, /fontsize=72:/, 'watermark: h/30');
      assert.match(g, /boxborderw=42:/);
      assert.equal(args[args.indexOf('-preset') + 1], 'superfast');
      assert.ok(args.includes('+faststart') && args.includes('yuv420p') && args.includes('aac'));
    }
    assert.deepEqual(backdropSize({ w: 2160, h: 3840 }), { w: 720, h: 1280 });
    assert.deepEqual(backdropSize({ w: 1024, h: 1792 }), { w: 720, h: 1260 });
    assert.deepEqual(backdropSize({ w: 1280, h: 720 }), { w: 1280, h: 720 });
  });

  test('images zoom at the final size, from one decoded frame', () => {
    const { args, graph: g } = graph({ ...base, images: ['/a.png', '/b.png'], mode: 'frames', size: { w: 1080, h: 1920 } });
    assert.equal(args.filter((a) => a === '-loop').length, 0);
    assert.match(g, /zoompan=z='1\+0\.18\*on\/192'[^;]*:d=192:s=1080x1920:/);
    assert.match(g, /scale=2160:3840:force_original_aspect_ratio=increase,crop=2160:3840/, 'zoomed from a 2x copy below 4k');
    assert.equal(args[args.indexOf('-preset') + 1], 'veryfast');
    const uhd = graph({ ...base, images: ['/a.png'], mode: 'frames', size: { w: 3840, h: 2160 } }).graph;
    assert.match(uhd, /crop=3840:2160,setsar=1,zoompan=[^;]*s=3840x2160/, 'at 4k, from a 1x copy');
    assert.equal(presetFor({ w: 1920, h: 1080 }), 'veryfast');
    assert.equal(presetFor({ w: 2160, h: 3840 }), 'superfast');
  });
});

test('extendArgs: the source fitted and padded, joined to the new part by concat', () => {
  const input: SceneInput = { prompt: 'on', seed: 1, aspectRatio: '16:9', durationSeconds: 4, images: ['/last.png'], mode: 'frames', captionFile: '/c', font: '/f', size: { w: 1920, h: 1080 } };
  const args = extendArgs(input, { file: '/src.mp4', durationSeconds: 2.5, hasAudio: true }, '/o.mp4');
  const g = args[args.indexOf('-filter_complex') + 1]!;
  assert.deepEqual(args.filter((a, i) => args[i - 1] === '-i').slice(0, 2), ['/src.mp4', '/last.png']);
  assert.match(g, /\[0:v:0\]scale=[^;]*pad=1920:1080:[^;]*fps=24,format=yuv420p,trim=duration=2\.5/);
  assert.match(g, /\[0:a:0\]aresample=48000,[^;]*channel_layouts=stereo,apad,atrim=duration=2\.5/);
  assert.match(g, /\[1:v\][^;]*zoompan=z='1\+0\.18\*on\/96'[^;]*s=1920x1080/);
  assert.match(g, /\[sv\]\[sa\]\[v\]\[na\]concat=n=2:v=1:a=1\[cv\]\[ca\]/);
  assert.equal(args[args.indexOf('-t', args.indexOf('-filter_complex')) + 1], '6.5');
  const silent = extendArgs(input, { file: '/src.mp4', durationSeconds: 2, hasAudio: false }, '/o.mp4');
  assert.match(silent[silent.indexOf('-filter_complex') + 1]!, /anullsrc=r=48000:cl=stereo,[^;]*atrim=duration=2\[sa\]/);
  assert.doesNotMatch(silent.join(' '), /0:a/);
  assert.throws(() => extendArgs({ ...input, images: [] }, { file: '/s', durationSeconds: 1, hasAudio: true }, '/o'));
  assert.ok(lastFrameArgs('/src.mp4', '/last.png', 8).join(' ').includes('-sseof -1.000 -i /src.mp4'));
  assert.ok(lastFrameArgs('/src.mp4', '/last.png', 0.4).join(' ').includes('-sseof -0.400'));
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
