import { ReelayError, TaskCanceledError, TaskExpiredError, TaskFailedError, WaitTimeoutError } from '../../packages/client/src/index.js';

/**
 * The exit codes of the commands that make and follow tasks (`reelay generate`, `reelay tasks
 * wait`): each end a script may need to tell apart (README, "Making videos from a terminal").
 */
export const EXIT = {
  /** The task succeeded (and its video was written). */
  ok: 0,
  /** The task failed (upstream, timeout on the server, a bad input image, an internal error), or the gateway could not be reached. */
  failed: 1,
  /** Bad input: a flag, a file, or a request the server refused as invalid; a missing or wrong key. */
  usage: 2,
  /** The provider refused the prompt or an image for safety. */
  safety: 3,
  /** `--timeout` passed while the task still runs (it keeps running). */
  timeout: 4,
  /** The task was canceled. */
  canceled: 5,
  /** Refused for the key's credits or limits (402, 429): nothing was made. */
  refused: 6,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

/** The exit code an error of the client (or of reading the command's input) ends the command with. */
export function exitCodeOf(err: unknown): number {
  // A Ctrl-C that aborted a request (its signal's reason).
  if (err instanceof Error && err.name === 'AbortError') return EXIT.interrupted;
  if (err instanceof TaskFailedError) return err.code === 'content_policy' ? EXIT.safety : EXIT.failed;
  if (err instanceof TaskCanceledError) return EXIT.canceled;
  if (err instanceof TaskExpiredError) return EXIT.failed;
  if (err instanceof WaitTimeoutError) return EXIT.timeout;
  if (err instanceof ReelayError) {
    if (err.code === 'content_policy') return EXIT.safety;
    if (err.code === 'insufficient_credits' || err.code === 'rate_limited') return EXIT.refused;
    // The same request still being answered: nothing wrong with the input, try again.
    if (err.code === 'in_progress') return EXIT.failed;
    // The output file could not be written (a folder, no permission).
    if (err.code === 'file') return EXIT.usage;
    if (err.status !== null && err.status >= 400 && err.status < 500) return EXIT.usage;
    return EXIT.failed;
  }
  if (err instanceof UsageError) return EXIT.usage;
  return EXIT.failed;
}

/** Bad input caught before anything is sent: a file that cannot be read, a flag out of range. */
export class UsageError extends Error {}
