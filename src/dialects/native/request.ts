import Type, { type Static } from 'typebox';
import { ApiError } from '../../app/errors.js';
import type { TaskSpec } from '../../core/task.js';

/**
 * `POST /reelay/v1/tasks`: Reelay's own create. `model` is any public model of the routing file
 * (the local renderer serves a model no rule names); `resolution` above 720p is made by the
 * upsample step; `images` are first and last frames, or up to three reference images.
 */
/** The longest prompt and callback URL a create takes. */
export const MAX_PROMPT = 20000;
export const MAX_URL = 2048;

export const CreateBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' }),
    prompt: Type.String({ maxLength: MAX_PROMPT }),
    images: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 16 * 1024 * 1024 }), { maxItems: 3 })),
    image_mode: Type.Optional(Type.Enum(['frames', 'reference'])),
    aspect_ratio: Type.Optional(Type.Enum(['16:9', '9:16', 'auto'])),
    seconds: Type.Optional(Type.Enum([4, 6, 8])),
    resolution: Type.Optional(Type.Enum(['720p', '1080p', '4k'])),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295 })),
    enhance_prompt: Type.Optional(Type.Boolean()),
    watermark: Type.Optional(Type.String({ maxLength: 100 })),
    webhook_url: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_URL, pattern: '^https?://' })),
  },
  { additionalProperties: false },
);
export type CreateBody = Static<typeof CreateBody>;

export function toSpec(body: CreateBody, randomSeed: () => number): TaskSpec {
  const prompt = body.prompt.trim();
  if (!prompt) throw new ApiError('validation', 'prompt must not be empty', 'prompt');
  const images = body.images ?? [];
  const mode = images.length === 0 ? 'text' : (body.image_mode ?? (images.length > 2 ? 'reference' : 'frames'));
  if (mode === 'frames' && images.length > 2) throw new ApiError('validation', 'image_mode frames takes a first and a last frame: at most 2 images', 'images');
  const resolution = body.resolution ?? '720p';
  return {
    prompt,
    images,
    mode,
    aspectRatio: body.aspect_ratio ?? '16:9',
    resolution,
    upsample: resolution !== '720p',
    seed: body.seed ?? randomSeed(),
    durationSeconds: body.seconds ?? 8,
    enhancePrompt: body.enhance_prompt ?? false,
    ...(body.watermark ? { watermark: body.watermark } : {}),
  };
}
