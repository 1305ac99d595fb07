import { kie } from './kie/index.js';
import { kkiai } from './kkiai/index.js';
import { gemini } from './gemini/index.js';
import { openai } from './openai/index.js';
import { native } from './native/index.js';
import type { Dialect } from './port.js';

/** Every front door Reelay serves: the only list of dialects. */
export const DIALECTS: readonly Dialect[] = [kie, kkiai, gemini, openai, native];

const BY_NAME = new Map(DIALECTS.map((d) => [d.name, d]));

/** The dialect a task was created through (`task.dialect`). */
export function dialectNamed(name: string): Dialect | undefined {
  return BY_NAME.get(name);
}
