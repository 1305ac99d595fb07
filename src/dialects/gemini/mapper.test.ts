import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeTask } from '../../../test/fixtures.js';
import { ApiError, type ApiErrorKind } from '../../app/errors.js';
import { STATES } from '../../core/states.js';
import type { ErrorKind } from '../../core/states.js';
import { GEMINI_ID, geminiTaskId } from './ids.js';
import { GOOGLE_STATUS, PREDICT_RESPONSE_TYPE, fileUri, googleError, operationName, toFile, toOperation } from './mapper.js';
import { storedRequest, toSpec } from './request.js';

const BASE = 'https://reelay.example';
const op = (over: Parameters<typeof makeTask>[0] = {}) => toOperation(makeTask({ id: 'abc123', model: 'veo-3.1-generate-preview', ...over }), BASE, 14);

test('operation and file ids: 32 lowercase hex, time-ordered, what the SDK keeps of a file uri', () => {
  const ids = Array.from({ length: 500 }, (_, i) => geminiTaskId(1_770_350_082_000 + i));
  for (const id of ids) assert.match(id, GEMINI_ID);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  const id = geminiTaskId();
  // @google/genai tFileName: the text after `files/`, matched by /[a-z0-9]+/.
  assert.equal(fileUri(BASE, { id }).split('files/')[1]!.match(/[a-z0-9]+/)![0], id);
});

test('a running task is {name} with done left out, whatever its state', () => {
  for (const state of ['queued', 'fetching', 'generating', 'generated', 'upsampling'] as const) {
    assert.deepEqual(op({ state }), { name: 'models/veo-3.1-generate-preview/operations/abc123' }, state);
  }
});

test('a succeeded task: done, the PredictLongRunningResponse with one sample whose uri is the file', () => {
  assert.deepEqual(op({ state: 'succeeded' }), {
    name: 'models/veo-3.1-generate-preview/operations/abc123',
    done: true,
    response: {
      '@type': PREDICT_RESPONSE_TYPE,
      generateVideoResponse: { generatedSamples: [{ video: { uri: `${BASE}/v1beta/files/abc123:download?alt=media`, encoding: 'video/mp4' } }] },
    },
  });
});

test('a content-policy failure is the RAI shape: done, no samples, the count and the reason', () => {
  const o = op({ state: 'failed', failureStage: 'generation', lastErrorKind: 'content_policy', lastError: 'unsafe prompt' });
  assert.equal(o.done, true);
  assert.equal(o.error, undefined);
  assert.deepEqual(o.response, { '@type': PREDICT_RESPONSE_TYPE, generateVideoResponse: { raiMediaFilteredCount: 1, raiMediaFilteredReasons: ['unsafe prompt'] } });
  const noText = op({ state: 'failed', failureStage: 'generation', lastErrorKind: 'content_policy', lastError: null });
  assert.match(noText.response!.generateVideoResponse.raiMediaFilteredReasons![0]!, /safety policies/);
});

test('other failures: done with a google.rpc code and the message', () => {
  const want: Record<Exclude<ErrorKind, 'content_policy' | 'canceled'>, number> = { image_fetch: 3, timeout: 4, upstream: 13, internal: 13 };
  for (const [kind, code] of Object.entries(want)) {
    const o = op({ state: 'failed', failureStage: kind === 'image_fetch' ? 'input' : 'generation', lastErrorKind: kind as ErrorKind, lastError: `boom ${kind}` });
    assert.deepEqual(o, { name: 'models/veo-3.1-generate-preview/operations/abc123', done: true, error: { code, message: `boom ${kind}` } }, kind);
  }
  assert.deepEqual(op({ state: 'failed', failureStage: 'upsample', lastErrorKind: null, lastError: null }).error, { code: 13, message: 'Video generation failed.' });
});

test('a canceled task is done with 1 CANCELLED, as an operation Google canceled', () => {
  assert.deepEqual(op({ state: 'canceled', failureStage: 'generation', lastErrorKind: 'canceled', lastError: 'Canceled by the client' }), {
    name: 'models/veo-3.1-generate-preview/operations/abc123',
    done: true,
    error: { code: 1, message: 'Operation was cancelled.' },
  });
});

test('an expired task is done with 5 NOT_FOUND "expired"', () => {
  assert.deepEqual(op({ state: 'expired' }).error, { code: 5, message: 'Operation models/veo-3.1-generate-preview/operations/abc123 has expired: results are kept 14 days' });
});

test('every state renders, for tasks of every door: the name uses the task\'s own model and id', () => {
  for (const state of STATES) assert.ok(toOperation(makeTask({ state }), BASE, 14).name);
  assert.equal(operationName(makeTask()), 'models/veo3.1-fast/operations/veo3.1-fast%3A1770350082-trii1OXZc3');
  assert.equal(operationName(makeTask({ id: '0123abcd', model: 'veo3_fast' })), 'models/veo3_fast/operations/0123abcd');
});

test('the File resource of a task video', () => {
  const done = toFile(makeTask({ id: 'abc', state: 'succeeded', completedAt: 0, createdAt: 0, updatedAt: 0 }), BASE, 86_400_000, 1234);
  assert.deepEqual(done, {
    name: 'files/abc',
    mimeType: 'video/mp4',
    sizeBytes: '1234',
    createTime: '1970-01-01T00:00:00.000Z',
    updateTime: '1970-01-01T00:00:00.000Z',
    expirationTime: '1970-01-02T00:00:00.000Z',
    uri: `${BASE}/v1beta/files/abc`,
    downloadUri: `${BASE}/v1beta/files/abc:download?alt=media`,
    state: 'ACTIVE',
    source: 'GENERATED',
  });
  assert.equal(toFile(makeTask({ state: 'generating' }), BASE, 1).state, 'PROCESSING');
  const failed = toFile(makeTask({ state: 'failed', lastErrorKind: 'timeout', lastError: 'too slow' }), BASE, 1);
  assert.equal(failed.state, 'FAILED');
  assert.deepEqual(failed.error, { code: 4, message: 'too slow' });
});

test('the error envelope: a google.rpc status for every kind, code = HTTP status', () => {
  for (const kind of Object.keys(GOOGLE_STATUS) as ApiErrorKind[]) {
    const { status, body } = googleError(new ApiError(kind, 'm'), true);
    assert.equal(body.error.code, status, kind);
    assert.ok(status >= 400 && status < 600, kind);
    assert.match(body.error.status, /^[A-Z_]+$/);
    assert.equal(typeof body.error.message, 'string');
  }
  assert.deepEqual(googleError(new ApiError('not_found', 'gone'), true), { status: 404, body: { error: { code: 404, message: 'gone', status: 'NOT_FOUND' } } });
  assert.equal(googleError(new ApiError('maintenance', 'm'), true).status, 503);
  assert.equal(googleError(new ApiError('internal', 'm'), true).body.error.status, 'INTERNAL');
  const badKey = googleError(new ApiError('unauthorized', 'x'), true);
  assert.equal(badKey.status, 400);
  assert.equal(badKey.body.error.message, 'API key not valid. Please pass a valid API key.');
  assert.equal((badKey.body.error.details![0] as { reason: string }).reason, 'API_KEY_INVALID');
  const noKey = googleError(new ApiError('unauthorized', 'x'), false);
  assert.equal(noKey.status, 403);
  assert.equal(noKey.body.error.status, 'PERMISSION_DENIED');
});

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex').toString('base64');
const seed = () => 4242;
const spec = (instance: Record<string, unknown>, parameters: Record<string, unknown> = {}, model = 'veo-3.1-generate-preview') => toSpec(model, { instances: [instance], parameters }, seed);

test('request: text, defaults, every parameter', () => {
  assert.deepEqual(spec({ prompt: ' a cat ' }), { prompt: 'a cat', images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 4242, durationSeconds: 8, enhancePrompt: false });
  const s = spec({ prompt: 'p' }, { aspectRatio: '9:16', resolution: '1080p', durationSeconds: '8', negativePrompt: 'blur', personGeneration: 'allow_all', sampleCount: 1, enhancePrompt: true, seed: 7, generateAudio: true, fps: 24 });
  assert.deepEqual([s.aspectRatio, s.resolution, s.upsample, s.durationSeconds, s.enhancePrompt, s.seed], ['9:16', '1080p', true, 8, true, 7]);
  assert.equal(spec({ prompt: 'p' }, { resolution: '4k' }).resolution, '4k');
  assert.equal(spec({ prompt: 'p' }, { durationSeconds: 4 }).durationSeconds, 4);
  assert.equal(spec({ prompt: 'p' }, { durationSeconds: 5 }, 'veo-2.0-generate-001').durationSeconds, 5);
});

test('request: every image encoding gives the same data: URL; frames and reference modes', () => {
  const want = `data:image/png;base64,${PNG}`;
  for (const image of [{ bytesBase64Encoded: PNG, mimeType: 'image/png' }, { inlineData: { mimeType: 'image/png', data: PNG } }, { imageBytes: PNG, mimeType: 'image/png' }, { bytesBase64Encoded: PNG }]) {
    assert.deepEqual(spec({ prompt: 'p', image }).images, [want], JSON.stringify(image));
  }
  const urlSafe = spec({ image: { bytesBase64Encoded: '-_-_', mimeType: 'image/jpeg' } });
  assert.deepEqual(urlSafe.images, ['data:image/jpeg;base64,+/+/']);
  assert.equal(urlSafe.prompt, '', 'an image needs no prompt');
  const frames = spec({ prompt: 'p', image: { bytesBase64Encoded: PNG }, lastFrame: { bytesBase64Encoded: PNG, mimeType: 'image/png' } });
  assert.equal(frames.mode, 'frames');
  assert.equal(frames.images.length, 2);
  const refs = spec({ prompt: 'p', referenceImages: [{ image: { bytesBase64Encoded: PNG }, referenceType: 'asset' }, { image: { bytesBase64Encoded: PNG }, referenceType: 'ASSET' }, { image: { bytesBase64Encoded: PNG }, referenceType: 'style' }] });
  assert.equal(refs.mode, 'reference');
  assert.equal(refs.images.length, 3);
});

test('request: an extension from a file uri or from bytes', () => {
  assert.equal(spec({ prompt: 'p', video: { uri: `${BASE}/v1beta/files/0123abc:download?alt=media`, encoding: 'video/mp4' } }).video, 'task:0123abc');
  assert.equal(spec({ prompt: 'p', video: { uri: 'files/0123abc' } }).video, 'task:0123abc');
  assert.equal(spec({ prompt: 'p', video: { encodedVideo: 'AAAA', encoding: 'video/mp4' } }).video, 'data:video/mp4;base64,AAAA');
  assert.equal(spec({ prompt: 'p', video: { videoBytes: 'AAAA', mimeType: 'video/webm' } }).video, 'data:video/webm;base64,AAAA');
  assert.equal(spec({ video: { bytesBase64Encoded: 'AAAA' } }).video, 'data:video/mp4;base64,AAAA');
});

test('request: clear errors naming the field', () => {
  const bad = (body: unknown, re: RegExp, model = 'veo-3.1-generate-preview') => assert.throws(() => toSpec(model, body, seed), (e: ApiError) => e.kind === 'validation' && re.test(e.message), String(re));
  const one = (instance: Record<string, unknown>, parameters: Record<string, unknown> = {}) => ({ instances: [instance], parameters });
  bad(null, /JSON object/);
  bad({}, /instances must be an array of exactly one/);
  bad({ instances: [{ prompt: 'a' }, { prompt: 'b' }] }, /exactly one/);
  bad(one({}), /prompt is required/);
  bad(one({ prompt: 42 }), /prompt must be a string/);
  bad(one({ prompt: 'p', image: { gcsUri: 'gs://b/o.png' } }), /gcsUri is not supported/);
  bad(one({ prompt: 'p', image: { bytesBase64Encoded: 'not base64!' } }), /image.bytesBase64Encoded is not valid base64/);
  bad(one({ prompt: 'p', image: { bytesBase64Encoded: 'AAAA', mimeType: 'text/plain' } }), /image.mimeType must be one of/);
  bad(one({ prompt: 'p', image: { bytesBase64Encoded: 'AAAA' } }), /not given and the bytes are none/);
  bad(one({ prompt: 'p', image: 'x' }), /image must be an object/);
  bad(one({ prompt: 'p', lastFrame: { bytesBase64Encoded: PNG } }), /lastFrame needs instances\[0\].image/);
  bad(one({ prompt: 'p', referenceImages: [] }), /1 to 3 reference images/);
  bad(one({ prompt: 'p', referenceImages: [1, 2, 3, 4] }), /1 to 3 reference images/);
  bad(one({ prompt: 'p', referenceImages: [{ image: { bytesBase64Encoded: PNG }, referenceType: 'mask' }] }), /referenceType must be "asset" or "style"/);
  bad(one({ prompt: 'p', image: { bytesBase64Encoded: PNG }, referenceImages: [{ image: { bytesBase64Encoded: PNG } }] }), /cannot be combined/);
  bad(one({ prompt: 'p', image: { bytesBase64Encoded: PNG }, video: { uri: 'files/abc' } }), /takes only a prompt/);
  bad(one({ prompt: 'p', video: { uri: 'https://x/y.mp4' } }), /uri of a video made here/);
  bad(one({ prompt: 'p', video: { gcsUri: 'gs://b/v.mp4' } }), /video.gcsUri is not supported/);
  bad(one({ prompt: 'p', video: { encodedVideo: 'AAAA', encoding: 'image/png' } }), /video.encoding must be/);
  bad(one({ prompt: 'p', video: {} }), /needs a uri or the video's bytes/);
  bad(one({ prompt: 'p' }, { sampleCount: 2 }), /sampleCount must be 1/);
  bad(one({ prompt: 'p' }, { aspectRatio: '1:1' }), /aspectRatio must be one of "16:9", "9:16"/);
  bad(one({ prompt: 'p' }, { resolution: '2k' }), /resolution must be one of/);
  bad(one({ prompt: 'p' }, { durationSeconds: 5 }), /durationSeconds must be 4, 6 or 8 on veo-3.1-generate-preview, got 5/);
  bad(one({ prompt: 'p' }, { durationSeconds: 4 }), /5 to 8 on veo-2.0/, 'veo-2.0-generate-001');
  bad(one({ prompt: 'p' }, { durationSeconds: 'eight' }), /durationSeconds must be a whole number/);
  bad(one({ prompt: 'p' }, { durationSeconds: 6.5 }), /whole number/);
  bad(one({ prompt: 'p' }, { durationSeconds: 4, resolution: '1080p' }), /must be 8 with resolution 1080p/);
  bad(one({ prompt: 'p', referenceImages: [{ image: { bytesBase64Encoded: PNG } }] }, { durationSeconds: 6 }), /must be 8 with referenceImages/);
  bad(one({ prompt: 'p', video: { uri: 'files/abc' } }, { durationSeconds: 4 }), /must be 8 when extending a video/);
  bad(one({ prompt: 'p' }, { personGeneration: 'everyone' }), /personGeneration must be one of/);
  bad(one({ prompt: 'p' }, { enhancePrompt: 'yes' }), /enhancePrompt must be a boolean/);
  bad(one({ prompt: 'p' }, { seed: -1 }), /seed must be a whole number|seed must be between/);
  bad(one({ prompt: 'p' }, { seed: 2 ** 33 }), /seed must be between/);
  bad({ ...one({ prompt: 'p' }), webhookConfig: 'https://x' }, /webhookConfig must be an object/);
  bad({ ...one({ prompt: 'p' }), parameters: [] }, /parameters must be an object/);
});

test('the stored request keeps the fields, webhookConfig included, but not the bytes', () => {
  const big = PNG.repeat(10);
  const stored = storedRequest({
    instances: [{ prompt: 'p', image: { bytesBase64Encoded: big, mimeType: 'image/png' }, referenceImages: [{ image: { inlineData: { data: big, mimeType: 'image/png' } } }], video: { encodedVideo: big } }],
    parameters: { durationSeconds: 8 },
    webhookConfig: { uris: ['https://hooks.example/veo'], userMetadata: { data: big } },
  }) as any;
  assert.match(stored.instances[0].image.bytesBase64Encoded, /^<\d+ bytes>$/);
  assert.equal(stored.instances[0].image.mimeType, 'image/png');
  assert.match(stored.instances[0].referenceImages[0].image.inlineData.data, /^<\d+ bytes>$/);
  assert.match(stored.instances[0].video.encodedVideo, /^<\d+ bytes>$/);
  assert.deepEqual(stored.webhookConfig, { uris: ['https://hooks.example/veo'], userMetadata: { data: big } });
  assert.deepEqual(stored.parameters, { durationSeconds: 8 });
});
