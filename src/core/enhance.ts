import { createHash } from 'node:crypto';

const SHOTS = ['wide establishing', 'slow dolly-in', 'low-angle tracking', 'overhead drone', 'handheld close-up', 'smooth orbiting'];
const LIGHT = ['golden-hour sunlight', 'soft overcast light', 'neon-lit night', 'warm candlelight', 'crisp morning light', 'moody blue-hour light'];
const MOOD = ['serene', 'playful', 'epic', 'dreamlike', 'tense', 'joyful'];
const DETAIL = ['rich textures', 'shallow depth of field', 'gentle film grain', 'vivid colour', 'fine natural detail', 'subtle lens flare'];

/**
 * The local prompt enhancer: deterministic, no model, no network. It keeps the prompt and appends a
 * cinematic description picked by a hash of the prompt, so the same prompt always gets the same
 * enhancement:
 *
 *   "A cat on the moon" →
 *   "A cat on the moon. Wide establishing shot, golden-hour sunlight, a serene mood, rich textures, smooth natural motion."
 */
export function enhancePrompt(prompt: string): string {
  const h = createHash('sha256').update(prompt).digest();
  const pick = (list: string[], i: number) => list[h[i]! % list.length]!;
  const base = prompt.trim().replace(/[.!?\s]+$/, '');
  const shot = pick(SHOTS, 0);
  return `${base}. ${shot[0]!.toUpperCase()}${shot.slice(1)} shot, ${pick(LIGHT, 1)}, a ${pick(MOOD, 2)} mood, ${pick(DETAIL, 3)}, smooth natural motion.`;
}
