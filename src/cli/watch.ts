import cliProgress from 'cli-progress';
import type { Task } from '../../packages/client/src/index.js';

/** How a task's progress is shown while a command waits for it: on stderr, never on stdout. */
export interface Watch {
  update(task: Task): void;
  /** Leaves the last state on screen (the bar stops where it is). */
  stop(): void;
}

/**
 * On a terminal, one bar that redraws in place: state, progress, time waited. Elsewhere (a pipe, a
 * log file, CI), one plain line per change of state, and per quarter of progress, each with the
 * seconds waited.
 */
export function watch(stream: NodeJS.WriteStream, startedAt = Date.now()): Watch {
  if (stream.isTTY) return barWatch(stream, startedAt);
  return lineWatch(stream, startedAt);
}

function barWatch(stream: NodeJS.WriteStream, startedAt: number): Watch {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{state} |{bar}| {percentage}% | {waited}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      // The state and the time change between updates of the progress: redraw every second.
      fps: 4,
      etaBuffer: 1,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let last = { state: 'queued', progress: 0 };
  const waited = () => seconds(Date.now() - startedAt);
  const timer = setInterval(() => started && bar.update(last.progress, { state: pad(last.state), waited: waited() }), 1000);
  timer.unref();
  return {
    update(task) {
      last = { state: task.state, progress: task.progress };
      if (!started) {
        started = true;
        bar.start(100, task.progress, { state: pad(task.state), waited: waited() });
      } else bar.update(task.progress, { state: pad(task.state), waited: waited() });
    },
    stop() {
      clearInterval(timer);
      if (started) bar.stop();
    },
  };
}

function lineWatch(stream: NodeJS.WriteStream, startedAt: number): Watch {
  let state = '';
  let quarter = -1;
  return {
    update(task) {
      const q = Math.floor(task.progress / 25);
      if (task.state === state && q === quarter) return;
      state = task.state;
      quarter = q;
      stream.write(`[${seconds(Date.now() - startedAt).padStart(5)}] ${task.state} ${task.progress}%\n`);
    },
    stop() {},
  };
}

const pad = (state: string) => state.padEnd(10);
const seconds = (ms: number) => `${Math.round(ms / 1000)}s`;
