import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { type Command, Option } from 'commander';
import { type CreateParams, Reelay, ReelayError, type Task, type Variant, isTerminal } from '../../packages/client/src/index.js';
import { sniffImage } from '../media/images.js';
import { probeMp4 } from '../media/mp4.js';
import { EXIT, UsageError, exitCodeOf } from './exit.js';
import { type Watch, watch } from './watch.js';

/** Where the commands find the gateway when `--url` and `REELAY_URL` say nothing. */
const DEFAULT_URL = 'http://127.0.0.1:8080';

interface RemoteOptions {
  url?: string;
  apiKey?: string;
}

/** `--url` and `--api-key`, on every command that talks to a gateway. */
function remote(cmd: Command): Command {
  return cmd
    .addOption(new Option('--url <url>', 'the gateway (default: REELAY_URL, else http://127.0.0.1:8080)'))
    .addOption(new Option('--api-key <key>', 'the API key (default: REELAY_API_KEY)'));
}

function clientOf(o: RemoteOptions): { client: Reelay; url: string; apiKey: string } {
  const url = (o.url ?? process.env.REELAY_URL?.trim()) || DEFAULT_URL;
  const apiKey = o.apiKey ?? process.env.REELAY_API_KEY?.trim();
  if (!apiKey) throw new UsageError('no API key: set REELAY_API_KEY or pass --api-key (make one with "reelay keys create")');
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, got "${url}"`);
  return { client: new Reelay({ baseURL: url, apiKey }), url: url.replace(/\/+$/, ''), apiKey };
}

/** Runs a command's body; an error ends it with a line on stderr and the exit code it means. */
async function run(body: () => Promise<number | void>, json = false): Promise<void> {
  let code: number;
  try {
    code = (await body()) ?? EXIT.ok;
  } catch (e) {
    code = fail(e, json);
  }
  exit(code);
}

/** Exits once what was written has gone out (kept-alive connections must not hold the process). */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function fail(e: unknown, json: boolean): number {
  const code = exitCodeOf(e);
  if (json && e instanceof ReelayError && e.task) process.stdout.write(`${JSON.stringify(e.task, null, 2)}\n`);
  const message = code === EXIT.interrupted ? 'interrupted' : e instanceof Error ? e.message : String(e);
  const id = e instanceof ReelayError && e.taskId && !message.includes(e.taskId) ? ` (task ${e.taskId})` : '';
  process.stderr.write(`reelay: ${message}${id}\n`);
  if (e instanceof ReelayError && e.code === 'network') process.stderr.write('reelay: is the gateway running? (--url, REELAY_URL)\n');
  return code;
}

/** A duration: `90`, `90s`, `30m`, `1h` (a number alone is seconds). */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m || Number(m[1]) === 0) throw new UsageError(`a duration is a number above 0 with s, m or h (90s, 30m, 1h), got "${v}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

/** An `--image`: a URL is sent as it is; a file is read and sent as a `data:` URL, its type from its bytes. */
export function imageOf(arg: string): string {
  if (/^(https?|data):/i.test(arg)) return arg;
  let bytes: Buffer;
  try {
    bytes = readFileSync(arg);
  } catch (e) {
    throw new UsageError(`--image ${arg}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const type = sniffImage(bytes)?.type;
  if (!type) throw new UsageError(`--image ${arg}: not a PNG, JPEG, WebP or GIF image`);
  return `data:${type};base64,${bytes.toString('base64')}`;
}

/**
 * The idempotency key of a `generate`: the same command (gateway, key, every input, the bytes of
 * each image) within the same hour gives the same key, so running it again after a dropped
 * connection or a Ctrl-C follows the task it made instead of paying for a second one.
 */
export function derivedKey(url: string, apiKey: string, params: CreateParams, now = Date.now()): string {
  const hour = Math.floor(now / 3_600_000);
  const h = createHash('sha256').update(JSON.stringify({ url, key: createHash('sha256').update(apiKey).digest('hex'), params, hour })).digest('hex');
  return `reelay-cli-${h.slice(0, 40)}`;
}

const collect = (v: string, all: string[]) => [...all, v];
const print = (v: unknown): void => void process.stdout.write(typeof v === 'string' ? `${v}\n` : `${JSON.stringify(v, null, 2)}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

/** The variant of `--hd`, or of `tasks download --variant`. */
const VARIANTS: Variant[] = ['video', '720p', '1080p', '4k'];

/** Checks a written video: an MP4 with a video stream, as the player will need it. */
function checkVideo(path: string): string {
  const p = probeMp4(path);
  if (!p?.video) throw new ReelayError(`${path} is not a playable MP4`, { code: 'bad_video' });
  return `${p.video.width}×${p.video.height}, ${(p.video.durationMs / 1000).toFixed(1)} s`;
}

/**
 * Ctrl-C while a command works: the first aborts what runs now (its `signal`), which the command
 * then handles as it should (ask to cancel, or say how to go on) and ends with 130; a second exits
 * 130 at once. Installed for the whole command, so no step runs under Node's default (a kill that
 * would leave a half-written file).
 */
class Interrupt {
  private readonly ctl = new AbortController();
  constructor() {
    process.on('SIGINT', this.fire);
  }
  readonly signal = this.ctl.signal;
  get fired(): boolean {
    return this.ctl.signal.aborted;
  }
  private readonly fire = () => {
    if (this.fired) return exit(EXIT.interrupted);
    this.ctl.abort();
  };
  dispose(): void {
    process.off('SIGINT', this.fire);
  }
}

interface WaitRun {
  client: Reelay;
  task: Task;
  timeoutMs?: number;
  detach: boolean;
  view: Watch;
  interrupt: Interrupt;
}

/**
 * Waits for the task with its progress shown, and handles Ctrl-C: with `--detach` the task is left
 * running; on a terminal the person is asked whether to cancel it (a second Ctrl-C, or an empty
 * answer, leaves it running); elsewhere it is left running. Either way the command ends with 130
 * and says how to follow the task again.
 */
async function follow({ client, task, timeoutMs, detach, view, interrupt }: WaitRun): Promise<Task | 'interrupted'> {
  try {
    return await client.wait(task, { signal: interrupt.signal, ...(timeoutMs ? { timeoutMs } : {}), onUpdate: (t) => view.update(t) });
  } catch (e) {
    if (!interrupt.fired) throw e;
  } finally {
    view.stop();
  }
  process.stderr.write('\n');
  if (!detach && process.stdin.isTTY && process.stderr.isTTY && (await ask(`Cancel task ${task.id}? [y/N] `))) {
    const canceled = await client.cancel(task.id).catch((e: unknown) => e as Error);
    note(canceled instanceof Error ? `reelay: the cancel failed: ${canceled.message}` : `task ${task.id} canceled`);
    return 'interrupted';
  }
  note(`task ${task.id} is still running: "reelay tasks wait ${task.id}" follows it again`);
  return 'interrupted';
}

/** A yes/no question on the terminal; Ctrl-C or Ctrl-D there is a no. */
async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(question)).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } catch {
    process.stderr.write('\n');
    return false;
  } finally {
    rl.close();
  }
}

/** Writes a succeeded task's video; a Ctrl-C stops it with no file left, and says how to write it later. */
async function save(client: Reelay, task: Task, to: string, interrupt: Interrupt, variant?: Variant): Promise<{ path: string; bytes: number } | 'interrupted'> {
  try {
    return await client.download(task, { to, signal: interrupt.signal, ...(variant ? { variant } : {}) });
  } catch (e) {
    if (!interrupt.fired) throw e;
    note(`\ninterrupted: the video was not written; "reelay tasks download ${task.id}" writes it`);
    return 'interrupted';
  }
}

/** `reelay generate`, `reelay tasks …` and `reelay credits`: the commands that work through a gateway's API. */
export function registerRemoteCommands(program: Command): void {
  // A reader that went away (`reelay tasks list | head -1`) ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT.ok);
    throw e;
  });
  remote(
    program
      .command('generate <prompt>')
      .description('make a video: prints the task id, shows its progress, writes the MP4 and prints its path (exit codes: README)')
      .addOption(new Option('--image <file|url>', 'an input image: first frame, then last frame (or references); repeatable').default([]).argParser(collect))
      .option('--model <model>', 'a public model name of the gateway', 'veo3.1-fast')
      .addOption(new Option('--aspect <ratio>', 'aspect ratio').choices(['16:9', '9:16']).default('16:9'))
      .addOption(new Option('--seconds <n>', 'length').choices(['4', '6', '8']).default('8'))
      .addOption(new Option('--hd <resolution>', 'make it 1080p or 4k (default 720p)').choices(['1080p', '4k']))
      .addOption(new Option('--image-mode <mode>', 'how the images are used').choices(['frames', 'reference']))
      .option('--seed <n>', 'a seed, for the same video again')
      .option('-o, --output <file>', 'where to write the MP4 (default: <task id>.mp4)')
      .option('--json', 'print the task as JSON (as "reelay tasks get --json") instead of the path')
      .option('--timeout <duration>', 'stop waiting after this long (90s, 30m, 1h); the task keeps running')
      .option('--detach', 'on Ctrl-C, leave the task running without asking')
      .option('--no-wait', 'print the task id and exit once it is created')
      .option('--idempotency-key <key>', 'the Idempotency-Key to send (default: one derived from the command and the hour)')
      .option('--new', 'make a new task even when the same command made one within the hour'),
  ).action((prompt: string, o: RemoteOptions & { image: string[]; model: string; aspect: '16:9' | '9:16'; seconds: string; hd?: '1080p' | '4k'; imageMode?: 'frames' | 'reference'; seed?: string; output?: string; json?: boolean; timeout?: string; detach?: boolean; wait: boolean; idempotencyKey?: string; new?: boolean }) =>
    run(async () => {
      const startedAt = Date.now();
      const { client, url, apiKey } = clientOf(o);
      if (!prompt.trim()) throw new UsageError('the prompt is empty');
      if (o.image.length > 3) throw new UsageError('at most 3 --image');
      const seed = o.seed === undefined ? undefined : /^\d{1,10}$/.test(o.seed) ? Number(o.seed) : NaN;
      if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 4294967295)) throw new UsageError(`--seed must be a whole number from 0 to 4294967295, got "${o.seed}"`);
      const timeoutMs = o.timeout === undefined ? undefined : parseDuration(o.timeout);
      const params: CreateParams = {
        model: o.model,
        prompt,
        aspectRatio: o.aspect,
        seconds: Number(o.seconds) as 4 | 6 | 8,
        resolution: o.hd ?? '720p',
        ...(o.image.length ? { images: o.image.map(imageOf) } : {}),
        ...(o.imageMode ? { imageMode: o.imageMode } : {}),
        ...(seed !== undefined ? { seed } : {}),
      };
      const idempotencyKey = o.idempotencyKey ?? (o.new ? undefined : derivedKey(url, apiKey, params, startedAt));
      const interrupt = new Interrupt();
      let made: { task: Task; replayed: boolean };
      try {
        made = await client.createWithReplay(params, { signal: interrupt.signal, ...(idempotencyKey ? { idempotencyKey } : {}) });
      } catch (e) {
        if (!interrupt.fired) throw e;
        note(`interrupted before the gateway answered: ${idempotencyKey ? 'the same command again follows the task, if one was made' : '"reelay tasks list" shows the task, if one was made'}`);
        return EXIT.interrupted;
      }
      let task = made.task;
      // The id first, before any waiting: whatever happens next, the task can be found again.
      note(`task ${task.id} (${task.model}, ${task.seconds} s, ${task.resolution}, ${task.aspect_ratio})`);
      if (made.replayed) {
        // A repeat is answered what the first create was: the task as it is now is read again.
        note(`the same command made this task at ${new Date(task.created_at).toLocaleTimeString()}: following it (--new makes another)`);
        task = await client.get(task.id);
      }
      if (!o.wait) {
        print(o.json ? task : task.id);
        return EXIT.ok;
      }
      const view = watch(process.stderr, Date.parse(task.created_at) || startedAt);
      view.update(task);
      const done = await follow({ client, task, ...(timeoutMs ? { timeoutMs } : {}), detach: o.detach === true, view, interrupt });
      if (done === 'interrupted') return EXIT.interrupted;
      const saved = await save(client, done, o.output ?? `${done.id}.mp4`, interrupt);
      if (saved === 'interrupted') return EXIT.interrupted;
      const { path, bytes } = saved;
      note(`wrote ${path}: ${checkVideo(path)}, ${bytes} bytes`);
      print(o.json ? done : path);
      return EXIT.ok;
    }, o.json === true),
  );

  const tasks = program.command('tasks').description("the key's tasks on a gateway: list, get, wait, cancel, events, download");

  remote(
    tasks
      .command('list')
      .description('newest first: id, state, model, provider, age')
      .option('--state <states>', 'only these states (a comma list)')
      .option('--model <model>')
      .option('--provider <provider>')
      .option('--dialect <dialect>', 'the door that made them: kie, kkiai, openai, gemini, reelay')
      .option('--limit <n>', 'at most this many', '20')
      .option('--json', 'a JSON array of the tasks'),
  ).action((o: RemoteOptions & { state?: string; model?: string; provider?: string; dialect?: string; limit: string; json?: boolean }) =>
    run(async () => {
      const { client } = clientOf(o);
      const limit = Number(o.limit);
      if (!(Number.isInteger(limit) && limit > 0)) throw new UsageError(`--limit must be a positive whole number, got "${o.limit}"`);
      const found: Task[] = [];
      const page = client.list({
        limit: Math.min(100, limit),
        ...(o.state ? { state: o.state.split(',').map((s) => s.trim()) as Task['state'][] } : {}),
        ...(o.model ? { model: o.model } : {}),
        ...(o.provider ? { provider: o.provider } : {}),
        ...(o.dialect ? { dialect: o.dialect } : {}),
      });
      for await (const t of page) {
        found.push(t);
        if (found.length >= limit) break;
      }
      if (o.json) return print(found);
      const now = Date.now();
      print(['id', 'state', 'model', 'provider', 'age'].join('\t'));
      for (const t of found) print([t.id, t.state, t.model, t.provider, age(now - Date.parse(t.created_at))].join('\t'));
    }, o.json === true),
  );

  remote(tasks.command('get <id>').description('one task').option('--json', 'the task as JSON')).action((id: string, o: RemoteOptions & { json?: boolean }) =>
    run(async () => {
      const { client } = clientOf(o);
      const t = await client.get(id);
      if (o.json) return print(t);
      print(describe(t));
    }, o.json === true),
  );

  remote(
    tasks
      .command('wait <id>')
      .description('follow a task until it ends (exit codes as generate); with -o, write its video')
      .option('-o, --output <file>', 'write its MP4 here once it succeeds')
      .option('--timeout <duration>', 'stop waiting after this long; the task keeps running')
      .option('--detach', 'on Ctrl-C, leave the task running without asking')
      .option('--json', 'print the task as JSON at the end'),
  ).action((id: string, o: RemoteOptions & { output?: string; timeout?: string; detach?: boolean; json?: boolean }) =>
    run(async () => {
      const { client } = clientOf(o);
      const timeoutMs = o.timeout === undefined ? undefined : parseDuration(o.timeout);
      const interrupt = new Interrupt();
      const task = await client.get(id, { signal: interrupt.signal });
      const view = watch(process.stderr, Date.parse(task.created_at));
      view.update(task);
      const done = await follow({ client, task, ...(timeoutMs ? { timeoutMs } : {}), detach: o.detach === true, view, interrupt });
      if (done === 'interrupted') return EXIT.interrupted;
      if (o.output) {
        const saved = await save(client, done, o.output, interrupt);
        if (saved === 'interrupted') return EXIT.interrupted;
        const { path, bytes } = saved;
        note(`wrote ${path}: ${checkVideo(path)}, ${bytes} bytes`);
        print(o.json ? done : path);
      } else print(o.json ? done : `${done.id} succeeded: ${done.outputs.video}`);
      return EXIT.ok;
    }, o.json === true),
  );

  remote(tasks.command('cancel <id>').description('cancel a task that has not ended; its work is stopped where it runs').option('--json', 'the task as JSON')).action(
    (id: string, o: RemoteOptions & { json?: boolean }) =>
      run(async () => {
        const { client } = clientOf(o);
        try {
          const t = await client.cancel(id);
          if (o.json) return print(t);
          print(`${t.id} canceled${t.cancel_outcome && t.cancel_outcome !== 'pending' ? ` (${t.cancel_outcome})` : ''}`);
        } catch (e) {
          // It ended first: it stays as it ended, which is not an error of the command's input.
          if (e instanceof ReelayError && e.code === 'conflict' && e.task) {
            if (o.json) print(e.task);
            note(`reelay: ${e.task.id} had already ended (${e.task.state}); it was not canceled`);
            return EXIT.failed;
          }
          throw e;
        }
      }, o.json === true),
  );

  remote(tasks.command('events <id>').description("a task's audit trail, oldest first").option('--json', 'the events as JSON')).action((id: string, o: RemoteOptions & { json?: boolean }) =>
    run(async () => {
      const { client } = clientOf(o);
      const events = await client.events(id);
      if (o.json) return print(events);
      for (const e of events) {
        const move = e.from || e.to ? ` ${e.from ?? ''}→${e.to ?? ''}` : '';
        const detail = e.detail ? ` ${JSON.stringify(e.detail)}` : '';
        print(`${e.at}  ${e.kind.padEnd(10)} ${e.actor.padEnd(9)}${move}${detail}`);
      }
    }, o.json === true),
  );

  remote(
    tasks
      .command('download <id>')
      .description('write a succeeded task\'s video')
      .option('-o, --output <file>', 'where (default: <task id>.mp4, or <task id>-<variant>.mp4)')
      .addOption(new Option('--variant <variant>', 'which file').choices(VARIANTS).default('video')),
  ).action((id: string, o: RemoteOptions & { output?: string; variant: Variant }) =>
    run(async () => {
      const { client } = clientOf(o);
      const out = o.output ?? (o.variant === 'video' ? `${id}.mp4` : `${id}-${o.variant}.mp4`);
      const interrupt = new Interrupt();
      const saved = await save(client, await client.get(id, { signal: interrupt.signal }), out, interrupt, o.variant);
      if (saved === 'interrupted') return EXIT.interrupted;
      const { path, bytes } = saved;
      note(`wrote ${path}: ${checkVideo(path)}, ${bytes} bytes`);
      print(path);
    }),
  );

  remote(program.command('credits').description("the key's credits balance and its latest ledger entries").option('--limit <n>', 'ledger entries', '10').option('--json', 'as JSON')).action(
    (o: RemoteOptions & { limit: string; json?: boolean }) =>
      run(async () => {
        const { client } = clientOf(o);
        const limit = Number(o.limit);
        if (!(Number.isInteger(limit) && limit >= 1 && limit <= 100)) throw new UsageError(`--limit must be a whole number from 1 to 100, got "${o.limit}"`);
        const [balance, ledger] = await Promise.all([client.balance(), client.ledger({ limit })]);
        if (o.json) return print({ balance, ledger: ledger.data });
        print(balance.metered ? `balance ${balance.credits}` : 'not metered: tasks cost nothing on this key');
        for (const e of ledger.data) print([e.at, e.kind, e.amount, e.item ?? '-', e.task_id ?? '-', e.note ?? ''].join('\t'));
      }, o.json === true),
  );
}

/** A task in a few lines, for people. */
function describe(t: Task): string {
  const lines = [
    `${t.id}  ${t.state}${isTerminal(t.state) ? '' : ` ${t.progress}%`}`,
    `  ${t.model} on ${t.provider}${t.fallback ? ' (fallback)' : ''}, ${t.seconds} s, ${t.resolution}, ${t.aspect_ratio}, made through ${t.dialect}`,
    `  prompt: ${t.prompt}`,
    `  created ${t.created_at}${t.completed_at ? `, ended ${t.completed_at}` : ''}; ${t.attempts} attempt(s), ${t.retries} retr${t.retries === 1 ? 'y' : 'ies'}`,
  ];
  if (t.error) lines.push(`  error (${t.error.kind ?? 'unknown'}, ${t.error.stage ?? '-'}): ${t.error.message}`);
  if (t.cancel_outcome) lines.push(`  cancel: ${t.cancel_outcome}`);
  if (t.credits_reserved !== null) lines.push(`  credits reserved: ${t.credits_reserved}`);
  if (t.outputs.video) lines.push(`  video: ${t.outputs.video}`);
  return lines.join('\n');
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
