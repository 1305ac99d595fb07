import Type, { type Static } from 'typebox';
import type { RequestedAspect, Resolution, TaskSpec } from '../../core/task.js';
import { ApiError } from '../../app/errors.js';

export const KIE_MODELS = ['veo3', 'veo3_fast', 'veo3_lite'] as const;
const ASPECTS = ['16:9', '9:16', 'Auto'] as const;
const TYPES = ['TEXT_2_VIDEO', 'FIRST_AND_LAST_FRAMES_2_VIDEO', 'REFERENCE_2_VIDEO'] as const;

/** `POST /api/v1/veo/generate`: every documented field, in both the old and the new spellings. */
export const GenerateBody = Type.Object({
  prompt: Type.String({ maxLength: 20000 }),
  imageUrls: Type.Optional(Type.Array(Type.String({ maxLength: 16 * 1024 * 1024 }), { maxItems: 3 })),
  model: Type.Optional(Type.Enum(KIE_MODELS)),
  generationType: Type.Optional(Type.Enum(TYPES)),
  aspect_ratio: Type.Optional(Type.Enum(ASPECTS)),
  aspectRatio: Type.Optional(Type.Enum(ASPECTS)),
  resolution: Type.Optional(Type.Enum(['720p', '1080p', '4k'])),
  seeds: Type.Optional(Type.Integer({ minimum: 10000, maximum: 99999 })),
  duration: Type.Optional(Type.Integer({ minimum: 4, maximum: 8 })),
  callBackUrl: Type.Optional(Type.String({ maxLength: 4096 })),
  enableFallback: Type.Optional(Type.Boolean()),
  enableTranslation: Type.Optional(Type.Boolean()),
  watermark: Type.Optional(Type.String({ maxLength: 200 })),
});
export type GenerateBody = Static<typeof GenerateBody>;

export const TaskQuery = Type.Object({
  taskId: Type.Optional(Type.String()),
  index: Type.Optional(Type.String()),
});
export type TaskQuery = Static<typeof TaskQuery>;

/** Turns a validated generate body into the dialect-neutral spec. Throws ApiError('validation'). */
export function toSpec(body: GenerateBody, randomSeed: () => number): TaskSpec {
  const prompt = body.prompt.trim();
  if (!prompt) throw new ApiError('validation', 'prompt is required', 'prompt');
  const images = body.imageUrls ?? [];
  const type = body.generationType ?? (images.length === 0 ? 'TEXT_2_VIDEO' : images.length <= 2 ? 'FIRST_AND_LAST_FRAMES_2_VIDEO' : 'REFERENCE_2_VIDEO');
  if (type === 'TEXT_2_VIDEO' && images.length > 0) {
    throw new ApiError('validation', 'generationType TEXT_2_VIDEO takes no imageUrls', 'generationType');
  }
  if (type === 'FIRST_AND_LAST_FRAMES_2_VIDEO' && (images.length < 1 || images.length > 2)) {
    throw new ApiError('validation', 'FIRST_AND_LAST_FRAMES_2_VIDEO needs 1 or 2 imageUrls', 'imageUrls');
  }
  if (type === 'REFERENCE_2_VIDEO' && images.length < 1) {
    throw new ApiError('validation', 'REFERENCE_2_VIDEO needs 1 to 3 imageUrls', 'imageUrls');
  }
  if (body.duration !== undefined && ![4, 6, 8].includes(body.duration)) {
    throw new ApiError('validation', 'duration must be 4, 6 or 8', 'duration');
  }
  const aspect = body.aspect_ratio ?? body.aspectRatio ?? '16:9';
  const resolution = (body.resolution ?? '720p') as Resolution;
  return {
    prompt,
    images,
    mode: type === 'TEXT_2_VIDEO' ? 'text' : type === 'REFERENCE_2_VIDEO' ? 'reference' : 'frames',
    // Auto picks 16:9 or 9:16 from the first image once it is fetched; without images it is 16:9.
    aspectRatio: (aspect === 'Auto' ? (images.length ? 'auto' : '16:9') : aspect) as RequestedAspect,
    resolution,
    upsample: resolution !== '720p',
    seed: body.seeds ?? randomSeed(),
    durationSeconds: body.duration ?? 8,
    enhancePrompt: false,
    ...(body.watermark ? { watermark: body.watermark } : {}),
  };
}

/** extend's `model`, in its own vocabulary, and the generate model each stands for. */
export const EXTEND_MODELS = { fast: 'veo3_fast', quality: 'veo3', lite: 'veo3_lite' } as const;

/** `POST /api/v1/veo/extend` (reference §1.5). */
export const ExtendBody = Type.Object({
  taskId: Type.String({ maxLength: 200 }),
  prompt: Type.String({ maxLength: 20000 }),
  seeds: Type.Optional(Type.Integer({ minimum: 10000, maximum: 99999 })),
  model: Type.Optional(Type.Enum(Object.keys(EXTEND_MODELS) as (keyof typeof EXTEND_MODELS)[])),
  watermark: Type.Optional(Type.String({ maxLength: 200 })),
  callBackUrl: Type.Optional(Type.String({ maxLength: 4096 })),
});
export type ExtendBody = Static<typeof ExtendBody>;

/** `POST /api/v1/veo/get-4k-video` (reference §1.4). */
export const UhdBody = Type.Object({
  taskId: Type.String({ maxLength: 200 }),
  index: Type.Optional(Type.Integer({ minimum: 0 })),
  callBackUrl: Type.Optional(Type.String({ maxLength: 4096 })),
});
export type UhdBody = Static<typeof UhdBody>;

/**
 * The spec of an extension: the source's frame (aspect, resolution) and an 8-second new part made
 * from its last frame with the new prompt. The source's images are not used again.
 */
export function toExtendSpec(body: ExtendBody, source: TaskSpec, randomSeed: () => number): TaskSpec {
  const prompt = body.prompt.trim();
  if (!prompt) throw new ApiError('validation', 'prompt is required', 'prompt');
  const { watermark: _w, ...rest } = source;
  return {
    ...rest,
    prompt,
    images: [],
    mode: 'text',
    seed: body.seeds ?? randomSeed(),
    durationSeconds: 8,
    enhancePrompt: false,
    video: `task:${body.taskId.trim()}`,
    ...(body.watermark ? { watermark: body.watermark } : {}),
  };
}
