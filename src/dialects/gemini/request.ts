import type { AspectRatio, Resolution, TaskSpec } from '../../core/task.js';
import { ApiError } from '../../app/errors.js';
import { taskIdOfFile } from './ids.js';

/** Any Veo model id (`veo-3.1-generate-preview`, `veo-2.0-generate-001`, …); others are not video models. */
export const VEO_MODEL = /^veo-[a-z0-9][a-z0-9.-]*$/;

/** The longest prompt taken (Veo's own limit is in tokens, about 1,024). */
const MAX_PROMPT = 20_000;
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);
const VIDEO_TYPES = new Set(['video/mp4', 'video/quicktime', 'video/webm']);
const PERSON_GENERATION = new Set(['allow_all', 'allow_adult', 'dont_allow']);

type Json = Record<string, unknown>;

const invalid = (message: string, param: string) => new ApiError('validation', message, param);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The Veo `predictLongRunning` body (`{instances:[{…}], parameters:{…}, webhookConfig}`) as a
 * spec. `@google/genai` sends the documented fields only; raw REST callers may also send what the
 * SDK refuses on the Gemini API (`seed`, `generateAudio`, …): `seed` is used, the rest ignored.
 *
 * Strictness follows Google's table, so an app that works here works there:
 * - `durationSeconds` (a number or a numeric string): 4, 6 or 8 on Veo 3.x, 5 to 8 on Veo 2;
 *   it must be 8 (the default) with 1080p or 4k, with reference images and for an extension;
 * - `sampleCount` must be 1: an operation makes one video here;
 * - images are inline bytes (`bytesBase64Encoded`, `inlineData.data` or `imageBytes`); a `gcsUri`
 *   is refused, as the Gemini API refuses it.
 * Throws ApiError('validation') naming the field.
 */
export function toSpec(model: string, body: unknown, randomSeed: () => number): TaskSpec {
  if (!isObject(body)) throw invalid('Request body must be a JSON object: {"instances":[{…}],"parameters":{…}}', 'instances');
  const { instances } = body;
  if (!Array.isArray(instances) || instances.length !== 1) throw invalid('instances must be an array of exactly one instance', 'instances');
  const instance = instances[0];
  if (!isObject(instance)) throw invalid('instances[0] must be an object', 'instances[0]');
  const params = body.parameters ?? {};
  if (!isObject(params)) throw invalid('parameters must be an object', 'parameters');
  if (body.webhookConfig !== undefined && !isObject(body.webhookConfig)) throw invalid('webhookConfig must be an object', 'webhookConfig');

  const at = 'instances[0]';
  const first = instance.image === undefined ? undefined : imageData(instance.image, `${at}.image`);
  const last = instance.lastFrame === undefined ? undefined : imageData(instance.lastFrame, `${at}.lastFrame`);
  const refs = instance.referenceImages === undefined ? undefined : referenceImages(instance.referenceImages, `${at}.referenceImages`);
  const video = instance.video === undefined ? undefined : sourceVideo(instance.video, `${at}.video`);
  if (last && !first) throw invalid(`${at}.lastFrame needs ${at}.image: the last frame closes a video that the image opens`, `${at}.lastFrame`);
  if (refs && first) throw invalid(`${at}.referenceImages cannot be combined with ${at}.image or lastFrame`, `${at}.referenceImages`);
  if (video && (first || refs)) throw invalid(`${at}.video (an extension) takes only a prompt: no image, lastFrame or referenceImages`, `${at}.video`);

  const prompt = instance.prompt === undefined ? '' : instance.prompt;
  if (typeof prompt !== 'string') throw invalid(`${at}.prompt must be a string`, `${at}.prompt`);
  if (prompt.length > MAX_PROMPT) throw invalid(`${at}.prompt is longer than ${MAX_PROMPT} characters`, `${at}.prompt`);
  if (!prompt.trim() && !first && !video) throw invalid(`${at}.prompt is required (it may be left out only with an image or a video)`, `${at}.prompt`);

  const aspectRatio = oneOf(params.aspectRatio, ['16:9', '9:16'], 'parameters.aspectRatio') ?? '16:9';
  const resolution = oneOf(typeof params.resolution === 'string' ? params.resolution.toLowerCase() : params.resolution, ['720p', '1080p', '4k'], 'parameters.resolution') ?? '720p';
  const sampleCount = params.sampleCount === undefined ? 1 : wholeNumber(params.sampleCount, 'parameters.sampleCount');
  if (sampleCount !== 1) throw invalid(`parameters.sampleCount must be 1 (numberOfVideos: 1): each operation makes one video here, got ${sampleCount}`, 'parameters.sampleCount');
  if (params.negativePrompt !== undefined && typeof params.negativePrompt !== 'string') throw invalid('parameters.negativePrompt must be a string', 'parameters.negativePrompt');
  if (params.personGeneration !== undefined && !(typeof params.personGeneration === 'string' && PERSON_GENERATION.has(params.personGeneration.toLowerCase()))) {
    throw invalid(`parameters.personGeneration must be one of ${[...PERSON_GENERATION].join(', ')}`, 'parameters.personGeneration');
  }
  if (params.enhancePrompt !== undefined && typeof params.enhancePrompt !== 'boolean') throw invalid('parameters.enhancePrompt must be a boolean', 'parameters.enhancePrompt');
  const seed = params.seed === undefined ? randomSeed() : wholeNumber(params.seed, 'parameters.seed');
  if (seed < 0 || seed > 4_294_967_295) throw invalid('parameters.seed must be between 0 and 4294967295', 'parameters.seed');

  const needsEight = resolution !== '720p' ? `with resolution ${resolution}` : refs ? 'with referenceImages' : video ? 'when extending a video' : undefined;
  const durationSeconds = duration(params.durationSeconds, model, needsEight);
  const images = refs ?? [first, last].filter((i): i is string => i !== undefined);
  return {
    prompt: prompt.trim(),
    images,
    mode: refs ? 'reference' : images.length ? 'frames' : 'text',
    aspectRatio: aspectRatio as AspectRatio,
    resolution: resolution as Resolution,
    upsample: resolution !== '720p',
    seed,
    durationSeconds,
    // Off unless asked: the local enhancer would change the prompt a client compares against.
    enhancePrompt: params.enhancePrompt === true,
    ...(video ? { video } : {}),
  };
}

/**
 * The URI `webhookConfig.uris` names, called with the done Operation (signed, as every callback);
 * undefined without one. Reelay calls one URI per operation: more is a validation error.
 */
export function webhookUri(body: unknown): string | undefined {
  const config = isObject(body) ? body.webhookConfig : undefined;
  if (!isObject(config) || config.uris === undefined) return undefined;
  const { uris } = config;
  if (!Array.isArray(uris) || uris.length > 1 || !uris.every((u) => typeof u === 'string' && /^https?:\/\/\S+$/i.test(u))) {
    throw invalid('webhookConfig.uris must be an array of one http(s) URI', 'webhookConfig.uris');
  }
  return uris[0] as string | undefined;
}

/**
 * The body as stored in `task.request` (kie `paramJson`, kkiai `detail.req`): the same, with
 * inline bytes replaced by their size, since the images are kept in the spec already.
 * `webhookConfig` is stored as sent; its URI is called when the operation is done (`webhookUri`).
 */
export function storedRequest(body: unknown): Record<string, unknown> {
  return isObject(body) ? (elideBytes(body) as Record<string, unknown>) : {};
}

const BYTE_FIELDS = new Set(['bytesBase64Encoded', 'imageBytes', 'encodedVideo', 'videoBytes']);

function elideBytes(v: unknown, key = '', parent = ''): unknown {
  const bytes = BYTE_FIELDS.has(key) || (key === 'data' && parent === 'inlineData');
  if (typeof v === 'string') return bytes && v.length > 64 ? `<${Math.floor((v.length * 3) / 4)} bytes>` : v;
  if (Array.isArray(v)) return v.map((x) => elideBytes(x, '', key));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, elideBytes(x, k, key)]));
  return v;
}

/** An image in any of the encodings Veo callers use, as a `data:` URL. */
function imageData(v: unknown, at: string): string {
  if (!isObject(v)) throw invalid(`${at} must be an object: {"bytesBase64Encoded": "…", "mimeType": "image/png"}`, at);
  if (v.gcsUri !== undefined) throw invalid(`${at}.gcsUri is not supported by the Gemini API; send the image's bytes in bytesBase64Encoded`, `${at}.gcsUri`);
  const inline = v.inlineData;
  if (inline !== undefined && !isObject(inline)) throw invalid(`${at}.inlineData must be an object: {"mimeType", "data"}`, `${at}.inlineData`);
  const [field, raw, mime] = inline
    ? [`${at}.inlineData.data`, inline.data, inline.mimeType]
    : v.bytesBase64Encoded !== undefined
      ? [`${at}.bytesBase64Encoded`, v.bytesBase64Encoded, v.mimeType]
      : [`${at}.imageBytes`, v.imageBytes, v.mimeType];
  if (raw === undefined) throw invalid(`${at} has no bytes: send bytesBase64Encoded (or inlineData.data) with mimeType`, `${at}.bytesBase64Encoded`);
  const data = base64(raw, field);
  const type = mime === undefined ? sniffImage(data) : typeof mime === 'string' ? mime.toLowerCase().replace('image/jpg', 'image/jpeg') : undefined;
  if (!type || !IMAGE_TYPES.has(type)) {
    throw invalid(`${at}.mimeType must be one of ${[...IMAGE_TYPES].join(', ')}${mime === undefined ? ' (it was not given and the bytes are none of them)' : ''}`, `${at}.mimeType`);
  }
  return `data:${type};base64,${data}`;
}

function referenceImages(v: unknown, at: string): string[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > 3) throw invalid(`${at} must be an array of 1 to 3 reference images`, at);
  return v.map((ref, i) => {
    if (!isObject(ref)) throw invalid(`${at}[${i}] must be an object: {"image": {…}, "referenceType": "asset"}`, `${at}[${i}]`);
    const type = ref.referenceType;
    if (type !== undefined && !(typeof type === 'string' && /^(asset|style)$/i.test(type))) {
      throw invalid(`${at}[${i}].referenceType must be "asset" or "style"`, `${at}[${i}].referenceType`);
    }
    return imageData(ref.image, `${at}[${i}].image`);
  });
}

/**
 * The video an extension continues: a video this API made (`uri` naming `files/<id>`, the task
 * of that id: TaskService checks it is the tenant's and finished), or its bytes.
 */
function sourceVideo(v: unknown, at: string): string {
  if (!isObject(v)) throw invalid(`${at} must be an object: {"uri": "…/v1beta/files/<id>:download?alt=media"} or {"encodedVideo": "…", "encoding": "video/mp4"}`, at);
  if (typeof v.uri === 'string' && v.uri) {
    const id = /(?:^|\/)files\/([^/:?#]+)/.exec(v.uri)?.[1];
    const taskId = id === undefined ? undefined : taskIdOfFile(id);
    if (!taskId) throw invalid(`${at}.uri must be the uri of a video made here (…/v1beta/files/<id>:download?alt=media)`, `${at}.uri`);
    return `task:${taskId}`;
  }
  if (v.gcsUri !== undefined) throw invalid(`${at}.gcsUri is not supported by the Gemini API; send the video's uri or its bytes in encodedVideo`, `${at}.gcsUri`);
  const [field, raw] = v.encodedVideo !== undefined ? [`${at}.encodedVideo`, v.encodedVideo] : v.videoBytes !== undefined ? [`${at}.videoBytes`, v.videoBytes] : [`${at}.bytesBase64Encoded`, v.bytesBase64Encoded];
  if (raw === undefined) throw invalid(`${at} needs a uri or the video's bytes (encodedVideo)`, at);
  const data = base64(raw, field);
  const mime = v.encoding ?? v.mimeType ?? 'video/mp4';
  if (typeof mime !== 'string' || !VIDEO_TYPES.has(mime.toLowerCase())) throw invalid(`${at}.encoding must be one of ${[...VIDEO_TYPES].join(', ')}`, `${at}.encoding`);
  return `data:${mime.toLowerCase()};base64,${data}`;
}

/** Standard base64 (URL-safe accepted, as protobuf's JSON reader does), checked. */
function base64(v: unknown, at: string): string {
  if (typeof v !== 'string' || !v) throw invalid(`${at} must be a non-empty base64 string`, at);
  const s = v.includes('\n') || v.includes('\r') ? v.replace(/[\r\n]/g, '') : v;
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s) || s.length % 4 === 1) throw invalid(`${at} is not valid base64`, at);
  return /[-_]/.test(s) ? s.replace(/-/g, '+').replace(/_/g, '/') : s;
}

/** The image type the first bytes say, for an image sent without `mimeType`. */
function sniffImage(b64: string): string | undefined {
  const head = Buffer.from(b64.slice(0, 16), 'base64');
  if (head.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) return 'image/png';
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  if (head.subarray(0, 4).toString('latin1') === 'GIF8') return 'image/gif';
  if (head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  return undefined;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], at: string): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw invalid(`${at} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(v)}`, at);
}

/** A whole number, given as a JSON number or a numeric string (the docs table lists "4", "6", "8"). */
function wholeNumber(v: unknown, at: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw invalid(`${at} must be a whole number, got ${JSON.stringify(v)}`, at);
  return n;
}

function duration(v: unknown, model: string, needsEight: string | undefined): number {
  if (v === undefined) return 8;
  const n = wholeNumber(v, 'parameters.durationSeconds');
  const veo2 = model.startsWith('veo-2.');
  if (!(veo2 ? [5, 6, 7, 8] : [4, 6, 8]).includes(n)) {
    throw invalid(`parameters.durationSeconds must be ${veo2 ? '5 to 8' : '4, 6 or 8'} on ${model}, got ${n}`, 'parameters.durationSeconds');
  }
  if (needsEight && n !== 8) throw invalid(`parameters.durationSeconds must be 8 ${needsEight}, got ${n}`, 'parameters.durationSeconds');
  return n;
}
