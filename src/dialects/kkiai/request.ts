import Type, { type Static } from 'typebox';
import type { TaskSpec } from '../../core/task.js';
import { ApiError } from '../../app/errors.js';
import { KKIAI_MODELS, KKIAI_MODEL_NAMES } from './models.js';

const Flag = Type.Union([Type.Boolean(), Type.Enum(['true', 'false'])]);

/** `POST /v1/video/create`. `enable_upsample` is typed string on one kkiai page, so "true"/"false" pass too. */
export const CreateBody = Type.Object({
  model: Type.String({ maxLength: 100 }),
  prompt: Type.String({ maxLength: 20000 }),
  images: Type.Optional(Type.Array(Type.String({ maxLength: 16 * 1024 * 1024 }), { maxItems: 3 })),
  enhance_prompt: Type.Optional(Flag),
  enable_upsample: Type.Optional(Flag),
  aspect_ratio: Type.Optional(Type.Enum(['16:9', '9:16'])),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295 })),
});
export type CreateBody = Static<typeof CreateBody>;

const flag = (v: boolean | string | undefined): boolean => v === true || v === 'true';

export function toSpec(body: CreateBody, randomSeed: () => number): TaskSpec {
  const model = KKIAI_MODELS[body.model];
  if (!model) {
    throw new ApiError('validation', `unknown model "${body.model}"; supported: ${KKIAI_MODEL_NAMES.join(', ')}`, 'model');
  }
  const prompt = body.prompt.trim();
  if (!prompt) throw new ApiError('validation', 'prompt is required', 'prompt');
  const images = body.images ?? [];
  if (images.length > model.maxImages) {
    const hint = model.maxImages === 0 ? ` (it is text-to-video; use ${body.model}-frames or a veo3.1 model for images)` : '';
    throw new ApiError('validation', `model ${body.model} accepts at most ${model.maxImages} images, got ${images.length}${hint}`, 'images');
  }
  const upsample = flag(body.enable_upsample);
  return {
    prompt,
    images,
    mode: images.length === 0 ? 'text' : model.mode,
    aspectRatio: body.aspect_ratio ?? '16:9',
    resolution: upsample ? (model.uhd ? '4k' : '1080p') : '720p',
    upsample,
    seed: body.seed ?? randomSeed(),
    durationSeconds: 8,
    enhancePrompt: flag(body.enhance_prompt),
  };
}
