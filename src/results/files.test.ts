import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../../test/tmp.js';
import { fileToken } from '../core/ids.js';
import { sniffImage } from '../engine/inputs.js';
import { makeTask } from '../../test/fixtures.js';
import { FRAME_FILE, HD_FILE, INPUT_EXTENSIONS, ResultFiles, SOURCE_FILE, SPRITESHEET_FILE, THUMBNAIL_WEBP, UHD_FILE, UHD_THUMBNAIL, VIDEO_FILE, taskUrls } from './files.js';

test('a result URL maps to its file in a shard folder, or in the older per-task folder; nothing else is reachable', async () => {
  const dir = tmpDir();
  const files = new ResultFiles(dir, 'http://r');
  const task = { fileToken: fileToken() };
  await files.ensureDir(task);
  assert.equal(files.path(task, VIDEO_FILE), join(dir, 'results', task.fileToken.slice(0, 2), `${task.fileToken}-${VIDEO_FILE}`));
  assert.equal(files.served(task.fileToken, VIDEO_FILE), undefined, 'no file yet');
  writeFileSync(files.path(task, VIDEO_FILE), 'x');
  assert.equal(files.served(task.fileToken, VIDEO_FILE), `${task.fileToken.slice(0, 2)}/${task.fileToken}-${VIDEO_FILE}`);
  assert.equal(files.url(task, VIDEO_FILE), `http://r/files/${task.fileToken}/${VIDEO_FILE}`);

  const legacy = { fileToken: fileToken() };
  mkdirSync(join(dir, 'results', legacy.fileToken));
  writeFileSync(join(dir, 'results', legacy.fileToken, VIDEO_FILE), 'x');
  assert.equal(files.served(legacy.fileToken, VIDEO_FILE), `${legacy.fileToken}/${VIDEO_FILE}`);
  assert.equal(files.existing(legacy, VIDEO_FILE), join(dir, 'results', legacy.fileToken, VIDEO_FILE));
  assert.equal(files.existing(task, VIDEO_FILE), files.path(task, VIDEO_FILE));

  for (const [token, name] of [['..', VIDEO_FILE], [task.fileToken, '..'], [task.fileToken, '.video.mp4'], [task.fileToken.slice(1), VIDEO_FILE], [`${task.fileToken.slice(0, 20)}/x`, VIDEO_FILE], [task.fileToken, 'Video.mp4']] as const) {
    assert.equal(files.served(token, name), undefined, `${token} ${name}`);
  }
});

test('every image type an input may have is one the sweeper removes', () => {
  const samples = [
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]),
    Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
    Buffer.from('RIFF\0\0\0\0WEBPVP8 '),
    Buffer.from('GIF89a'),
  ];
  assert.deepEqual(samples.map((b) => sniffImage(b)?.ext), INPUT_EXTENSIONS);
});

test('taskUrls: an exact frame is the final video but no 1080p or 4k rendition; remove() takes every name a task may have', async () => {
  const dir = tmpDir();
  const files = new ResultFiles(dir, 'http://r');
  const frame = makeTask({ state: 'succeeded', fileToken: fileToken() }, { upsample: true, resolution: '1080p', frame: { width: 1024, height: 1792 } });
  const urls = taskUrls(files, frame);
  assert.equal(urls.final, files.url(frame, FRAME_FILE));
  assert.deepEqual([urls.hd1080, urls.uhd], [null, null], 'kie get-1080p-video makes a real 1080p from it');
  const hd = taskUrls(files, makeTask({ state: 'succeeded', fileToken: fileToken() }, { upsample: true, resolution: '1080p' }));
  assert.equal(hd.final, hd.hd1080);
  const uhd = taskUrls(files, makeTask({ state: 'succeeded', fileToken: fileToken(), uhdState: 'ready' }, { upsample: true, resolution: '1080p' }));
  assert.match(uhd.uhd!, /video-4k\.mp4$/);
  assert.match(uhd.uhdThumbnail!, /video-4k\.jpg$/);

  // Every file the engine, the renderer's hand-over and the stills write for a task is removed.
  const task = makeTask({ fileToken: fileToken() }, { images: ['a', 'b'] });
  await files.ensureDir(task);
  const names = [VIDEO_FILE, HD_FILE, UHD_FILE, FRAME_FILE, SOURCE_FILE, THUMBNAIL_WEBP, SPRITESHEET_FILE, UHD_THUMBNAIL, `${UHD_FILE}.tmp.mp4`, 'input-1.png'];
  for (const n of names) writeFileSync(files.path(task, n), 'x');
  files.remove(task);
  for (const n of names) assert.equal(files.served(task.fileToken, n), undefined, n);
});
