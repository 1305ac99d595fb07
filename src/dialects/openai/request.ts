import { ApiError } from '../../app/errors.js';
import type { TaskSpec } from '../../core/task.js';

/**
 * The requests of the OpenAI door arrive as JSON or as multipart/form-data (the SDK since 6.28
 * always sends multipart: every value a string part, objects as bracket keys, files as file parts).
 * Both are read into one `Form` and validated here by hand rather than by a schema: the same field
 * arrives as a JSON value or a string part, and each error names the field (`param`) as OpenAI does.
 */
export type Form = Record<string, unknown>;

/** A file part of a multipart body. */
export interface FilePart {
  kind: 'file';
  filename: string;
  contentType: string;
  bytes: Buffer;
}

export const isFile = (v: unknown): v is FilePart => typeof v === 'object' && v !== null && (v as FilePart).kind === 'file' && Buffer.isBuffer((v as FilePart).bytes);
const isObject = (v: unknown): v is Form => typeof v === 'object' && v !== null && !Array.isArray(v) && !isFile(v);

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 3;

/**
 * The path of a multipart field name: `input_reference[image_url]` → `['input_reference',
 * 'image_url']`. Array (`a[]`) and deeper keys are refused: no OpenAI video field has them.
 */
export function fieldPath(name: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]+\])*)$/.exec(name);
  if (!m) throw new ApiError('validation', `field name "${name}" is not understood (use name or name[key])`, name);
  const path = [m[1]!, ...[...m[2]!.matchAll(/\[([^[\]]+)\]/g)].map((k) => k[1]!)];
  if (path.length > MAX_DEPTH) throw new ApiError('validation', `field name "${name}" nests too deeply`, name);
  if (path.some((k) => FORBIDDEN_KEYS.has(k))) throw new ApiError('validation', `field name "${name}" is not allowed`, name);
  return path;
}

/** Puts one multipart value at its path; a field given twice is an error (which one would count?). */
export function setField(form: Form, name: string, value: unknown): void {
  const path = fieldPath(name);
  let at = form;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(at, key) ? at[key] : (at[key] = {});
    if (!isObject(next)) throw new ApiError('validation', `${name} conflicts with the field ${key} given as a value`, name);
    at = next;
  }
  const last = path[path.length - 1]!;
  if (Object.hasOwn(at, last)) throw new ApiError('validation', `${name} must be given once`, name);
  at[last] = value;
}

/** The request as stored in `task.request`: the body as received, a file as its name, type and size. */
export function recordOf(form: Form): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(form)) {
    out[k] = isFile(v) ? { filename: v.filename, content_type: v.contentType, bytes: v.bytes.length } : isObject(v) ? recordOf(v) : v;
  }
  return out;
}

/** The sizes OpenAI offers and the spec each one gives. The 1024-wide ones are made at 1080p and scaled to the exact frame. */
export const SIZES: Readonly<Record<string, Pick<TaskSpec, 'aspectRatio' | 'resolution' | 'upsample' | 'frame'>>> = {
  '720x1280': { aspectRatio: '9:16', resolution: '720p', upsample: false },
  '1280x720': { aspectRatio: '16:9', resolution: '720p', upsample: false },
  '1024x1792': { aspectRatio: '9:16', resolution: '1080p', upsample: true, frame: { width: 1024, height: 1792 } },
  '1792x1024': { aspectRatio: '16:9', resolution: '1080p', upsample: true, frame: { width: 1792, height: 1024 } },
};
export const DEFAULT_SIZE = '720x1280';
export const DEFAULT_MODEL = 'sora-2';
/** Clip lengths of a create and of a remix. */
export const CREATE_SECONDS = ['4', '8', '12'];
/** Lengths of an extension's new part (the OpenAI spec's description). */
export const EXTENSION_SECONDS = ['4', '8', '12', '16', '20'];
export const MAX_PROMPT = 32_000;
/** `input_reference.image_url` (a URL or a data URL), as OpenAI limits it. */
const MAX_IMAGE_URL = 20_971_520;

const listOf = (values: string[]) => values.map((v) => `'${v}'`).join(', ');

/**
 * A field that must be a string. A JSON number is refused, also for `seconds`: OpenAI types it a
 * string and rejects integers, and a client that works here must work there.
 */
function text(form: Form, name: string, param = name): string | undefined {
  const v = form[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    const got = isFile(v) ? 'a file' : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `the ${typeof v} ${JSON.stringify(v)}`;
    throw new ApiError('validation', `${param} must be a string, got ${got}`, param);
  }
  return v;
}

function oneOf(form: Form, name: string, allowed: string[], fallback: string | undefined): string {
  const v = text(form, name);
  if (v === undefined) {
    if (fallback === undefined) throw new ApiError('validation', `${name} is required: one of ${listOf(allowed)}`, name);
    return fallback;
  }
  if (!allowed.includes(v)) throw new ApiError('validation', `Invalid value for ${name}: '${v}'. Supported values are: ${listOf(allowed)}.`, name);
  return v;
}

export function promptOf(form: Form): string {
  const v = text(form, 'prompt');
  if (v === undefined || !v.trim()) throw new ApiError('validation', 'prompt is required', 'prompt');
  if (v.length > MAX_PROMPT) throw new ApiError('validation', `prompt must be at most ${MAX_PROMPT} characters, got ${v.length}`, 'prompt');
  return v.trim();
}

/** `model`: any name is routed like a public model name (the routing file decides who serves it). */
function modelOf(form: Form): string {
  const v = text(form, 'model');
  if (v === undefined) return DEFAULT_MODEL;
  const model = v.trim();
  if (!model) throw new ApiError('validation', 'model must not be empty', 'model');
  if (model.length > 200) throw new ApiError('validation', 'model must be at most 200 characters', 'model');
  return model;
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The image type of a file from its first bytes (a part's content type is the client's word only). */
export function imageTypeOf(bytes: Buffer): 'image/png' | 'image/jpeg' | 'image/webp' | undefined {
  if (bytes.subarray(0, 8).equals(PNG)) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

/** `input_reference` as the image URL the task fetches: a file part becomes a data: URL. */
function inputReference(form: Form): string | undefined {
  const v = form.input_reference;
  if (v === undefined) return undefined;
  if (isFile(v)) {
    const type = imageTypeOf(v.bytes);
    if (!type) throw new ApiError('validation', `input_reference must be a PNG, JPEG or WebP image (got ${v.contentType || 'an unknown type'}, ${v.bytes.length} bytes)`, 'input_reference');
    return `data:${type};base64,${v.bytes.toString('base64')}`;
  }
  if (!isObject(v)) throw new ApiError('validation', 'input_reference must be an image file or an object with image_url', 'input_reference');
  const unknown = Object.keys(v).filter((k) => k !== 'image_url' && k !== 'file_id');
  if (unknown.length) throw new ApiError('validation', `input_reference has an unknown field ${unknown[0]}; give image_url`, `input_reference.${unknown[0]}`);
  if (v.file_id !== undefined) {
    throw new ApiError('validation', 'input_reference.file_id is not supported: Reelay has no Files API; send the image as a file part or as input_reference[image_url]', 'input_reference.file_id');
  }
  const url = text(v, 'image_url', 'input_reference.image_url');
  if (url === undefined || !url.trim()) throw new ApiError('validation', 'input_reference needs image_url (an http(s) URL or a data: URL)', 'input_reference.image_url');
  if (url.length > MAX_IMAGE_URL) throw new ApiError('validation', `input_reference.image_url must be at most ${MAX_IMAGE_URL} characters`, 'input_reference.image_url');
  return url.trim();
}

/** `POST /v1/videos`: the public model name and the spec. Unknown fields are ignored. */
export function toCreateSpec(form: Form, randomSeed: () => number): { model: string; spec: TaskSpec } {
  const prompt = promptOf(form);
  const model = modelOf(form);
  const seconds = oneOf(form, 'seconds', CREATE_SECONDS, '4');
  const size = oneOf(form, 'size', Object.keys(SIZES), DEFAULT_SIZE);
  const image = inputReference(form);
  return {
    model,
    spec: {
      prompt,
      images: image ? [image] : [],
      mode: image ? 'frames' : 'text',
      ...SIZES[size]!,
      seed: randomSeed(),
      durationSeconds: Number(seconds),
      enhancePrompt: false,
    },
  };
}

/** `POST /v1/videos/extensions`: the new part's prompt and length, and the video to continue. */
export function toExtension(form: Form): { prompt: string; seconds: number; model: string; video: { id: string } | FilePart } {
  const prompt = promptOf(form);
  // Only an uploaded video takes \`model\` (default sora-2); an extension of a video keeps its model.
  const model = modelOf(form);
  const seconds = Number(oneOf(form, 'seconds', EXTENSION_SECONDS, undefined));
  const v = form.video;
  if (v === undefined) throw new ApiError('validation', 'video is required: {"id": "<video id>"} (video[id] in a form) or an MP4 file', 'video');
  if (isFile(v)) return { prompt, seconds, model, video: v };
  if (!isObject(v)) throw new ApiError('validation', 'video must be an object {"id": "<video id>"} (video[id] in a form) or an MP4 file', 'video');
  const id = text(v, 'id', 'video.id')?.trim();
  if (!id) throw new ApiError('validation', 'video.id is required', 'video.id');
  return { prompt, seconds, model, video: { id } };
}
