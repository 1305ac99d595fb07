import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../../test/tmp.js';
import { fileToken } from '../core/ids.js';
import { sniffImage } from '../media/images.js';
import { makeTask } from '../../test/fixtures.js';
import { FRAME_FILE, HD_FILE, INPUT_EXTENSIONS, ResultFiles, SOURCE_FILE, SPRITESHEET_FILE, THUMBNAIL_WEBP, UHD_FILE, UHD_THUMBNAIL, VIDEO_FILE, WORK_MAX_AGE_MS, taskUrls } from './files.js';

test('a task file is the key <shard>/<token>-<name>, in the results folder; the older per-task folder is still read; keyOf maps older rows', async () => {
  const dir = tmpDir();
  const files = new ResultFiles(dir, 'http://r');
  const task = { fileToken: fileToken() };
  const key = `${task.fileToken.slice(0, 2)}/${task.fileToken}-${VIDEO_FILE}`;
  assert.equal(files.key(task, VIDEO_FILE), key);
  assert.equal(await files.exists(task, VIDEO_FILE), undefined, 'no file yet');
  assert.equal(await files.local(task, VIDEO_FILE), undefined);

  // A scratch file is moved into the results folder: the same layout as before the object store.
  const scratch = await files.scratch(task, VIDEO_FILE);
  assert.equal(scratch, join(dir, 'work', key));
  writeFileSync(scratch, 'x');
  const info = await files.store(task, VIDEO_FILE, scratch);
  assert.deepEqual([info.key, info.bytes, info.contentType], [key, 1, 'video/mp4']);
  assert.equal(existsSync(scratch), false, 'moved, not copied');
  assert.equal(await files.local(task, VIDEO_FILE), join(dir, 'results', key), 'the stored file itself: zero copy');
  assert.equal(files.existing(task, VIDEO_FILE), join(dir, 'results', key));
  assert.equal(files.url(task, VIDEO_FILE), `http://r/files/${task.fileToken}/${VIDEO_FILE}`);

  const legacy = { fileToken: fileToken() };
  mkdirSync(join(dir, 'results', legacy.fileToken));
  writeFileSync(join(dir, 'results', legacy.fileToken, VIDEO_FILE), 'xy');
  assert.equal((await files.exists(legacy, VIDEO_FILE))?.bytes, 2);
  assert.equal(await files.local(legacy, VIDEO_FILE), join(dir, 'results', legacy.fileToken, VIDEO_FILE));
  assert.equal(files.existing(legacy, VIDEO_FILE), join(dir, 'results', legacy.fileToken, VIDEO_FILE));

  // Artifact rows: a key now; an absolute path in rows written before (wherever the folder was).
  assert.equal(files.keyOf(key), key);
  assert.equal(files.keyOf(`/old/data/results/${key}`), key);
  assert.equal(files.keyOf(`/old/data/results/${legacy.fileToken}/${VIDEO_FILE}`), `${legacy.fileToken}/${VIDEO_FILE}`);
  assert.equal(await files.localOf(`/moved/away/results/${key}`), join(dir, 'results', key));
  assert.throws(() => files.keyOf('../x'), /\.\./);

  // storeBytes writes a temporary name first; nothing is left in the work folder.
  await files.storeBytes(task, 'input-0.png', Buffer.from('png'));
  assert.equal(readFileSync((await files.local(task, 'input-0.png'))!, 'utf8'), 'png');
  assert.deepEqual(readdirSync(join(dir, 'work', task.fileToken.slice(0, 2))), []);
  await files.check();
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

  // Every file the engine, the renderer's hand-over and the stills store for a task is removed,
  // with scratch names older data folders kept in the results, and the task's work files.
  const task = makeTask({ fileToken: fileToken() }, { images: ['a', 'b'] });
  const names = [VIDEO_FILE, HD_FILE, UHD_FILE, FRAME_FILE, SOURCE_FILE, THUMBNAIL_WEBP, SPRITESHEET_FILE, UHD_THUMBNAIL, `${UHD_FILE}.tmp.mp4`, 'input-1.png'];
  for (const n of names) await files.storeBytes(task, n, Buffer.from('x'));
  const leftover = `${await files.scratch(task, HD_FILE)}.tmp.mp4`;
  writeFileSync(leftover, 'half');
  const legacy = makeTask({ fileToken: fileToken() });
  mkdirSync(join(dir, 'results', legacy.fileToken));
  writeFileSync(join(dir, 'results', legacy.fileToken, VIDEO_FILE), 'x');
  writeFileSync(join(dir, 'results', legacy.fileToken, 'anything-else'), 'x');
  await files.remove(task);
  await files.remove(legacy);
  for (const n of names) assert.equal(await files.exists(task, n), undefined, n);
  assert.equal(existsSync(leftover), false, 'its scratch files go too');
  assert.equal(existsSync(join(dir, 'results', legacy.fileToken)), false, 'the older layout\'s folder goes whole');
});

test('the work sweep removes work files untouched for a day, and nothing else', async () => {
  const dir = tmpDir();
  const files = new ResultFiles(dir, 'http://r');
  const task = { fileToken: fileToken() };
  const old = await files.scratch(task, VIDEO_FILE);
  const fresh = await files.scratch(task, HD_FILE);
  // The first use started a sweep of its own: it ends before any file here is aged.
  await files.settled();
  const copy = join(dir, 'work', 'copies', task.fileToken.slice(0, 2), `${task.fileToken}-${UHD_FILE}`);
  mkdirSync(join(copy, '..'), { recursive: true });
  for (const f of [old, fresh, copy]) writeFileSync(f, 'x');
  const dayAgo = new Date(Date.now() - WORK_MAX_AGE_MS - 60_000);
  for (const f of [old, copy]) utimesSync(f, dayAgo, dayAgo);
  await files.storeBytes(task, THUMBNAIL_WEBP, Buffer.from('x'));
  utimesSync(join(dir, 'results', files.key(task, THUMBNAIL_WEBP)), dayAgo, dayAgo);
  assert.equal(await files.sweepWork(Date.now() - WORK_MAX_AGE_MS), 2);
  assert.deepEqual([existsSync(old), existsSync(fresh), existsSync(copy)], [false, true, false]);
  assert.ok(await files.exists(task, THUMBNAIL_WEBP), 'stored results are not work files');
});
