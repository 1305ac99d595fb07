/**
 * The kkiai unified-format Veo models (the union of the published lists) and what each accepts.
 * - `maxImages`: how many `images` the model takes (0: text only).
 * - `mode`: how images are used: first/last frame, or reference "components".
 * - `resolution`: `4k` models upsample to 2160p when `enable_upsample` is set.
 */
export interface KkiaiModel {
  maxImages: number;
  mode: 'frames' | 'reference';
  uhd?: boolean;
}

export const KKIAI_MODELS: Readonly<Record<string, KkiaiModel>> = {
  veo2: { maxImages: 0, mode: 'frames' },
  'veo2-fast': { maxImages: 0, mode: 'frames' },
  'veo2-fast-frames': { maxImages: 2, mode: 'frames' },
  'veo2-fast-components': { maxImages: 3, mode: 'reference' },
  'veo2-pro': { maxImages: 0, mode: 'frames' },
  'veo2-pro-components': { maxImages: 3, mode: 'reference' },
  veo3: { maxImages: 0, mode: 'frames' },
  'veo3-fast': { maxImages: 0, mode: 'frames' },
  'veo3-frames': { maxImages: 2, mode: 'frames' },
  'veo3-fast-frames': { maxImages: 2, mode: 'frames' },
  'veo3-pro': { maxImages: 0, mode: 'frames' },
  'veo3-pro-frames': { maxImages: 1, mode: 'frames' },
  'veo3.1': { maxImages: 2, mode: 'frames' },
  'veo3.1-fast': { maxImages: 2, mode: 'frames' },
  'veo3.1-pro': { maxImages: 2, mode: 'frames' },
  'veo3.1-components': { maxImages: 3, mode: 'reference' },
  'veo3.1-4k': { maxImages: 2, mode: 'frames', uhd: true },
  'veo3.1-pro-4k': { maxImages: 2, mode: 'frames', uhd: true },
};

export const KKIAI_MODEL_NAMES = Object.keys(KKIAI_MODELS);
