import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config-error.js';
import type { ProviderConfig } from '../config.js';
import { frameSize } from '../local/scene.js';
import { httpError, snippet, cancelAnswer } from '../http.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { type PollOutcome, SafetyRejectedError, type SubmitRequest, TransientError } from '../port.js';
import { isSafetyText } from '../safety.js';

type Workflow = Record<string, unknown>;

interface HistoryEntry {
  outputs?: Record<string, Record<string, { filename?: string; subfolder?: string; type?: string }[] | unknown>>;
  status?: { status_str?: string; completed?: boolean; messages?: [string, { exception_message?: string; node_type?: string }][] };
}

const VIDEO = /\.(mp4|webm|mov|mkv)$/i;

/**
 * ComfyUI (a user's own GPU). A workflow in ComfyUI's API format is filled in per task and queued
 * with `POST /prompt`; `GET /history/{id}` says when it ran; the first video among the outputs is
 * fetched from `/view`. Input images are uploaded first (`POST /upload/image`).
 *
 * Placeholders in the workflow's string values: `{{prompt}}`, `{{seed}}`, `{{width}}`,
 * `{{height}}`, `{{seconds}}`, `{{frames}}` (at 24 fps), `{{image}}`, `{{last_image}}`. A value
 * that is exactly a placeholder takes its type (`"{{seed}}"` becomes a number).
 *
 * Options: `workflowFile` or `workflow` (text to video), `imageWorkflowFile` or `imageWorkflow`
 * (used when the task has images; default the first).
 */
export class ComfyUIProvider extends RemoteProvider {
  private readonly textWorkflow: Workflow;
  private readonly imageWorkflow: Workflow;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'http://127.0.0.1:8188', (): Record<string, string> => (config.apiKey ? { authorization: `Bearer ${config.apiKey}` } : {}), deps);
    const at = `provider ${config.label}`;
    const load = (inline: unknown, file: unknown, what: string): Workflow | undefined => {
      if (inline && typeof inline === 'object') return inline as Workflow;
      if (typeof file !== 'string') return undefined;
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as Workflow;
      } catch (e) {
        throw new ConfigError(`${at}: cannot read options.${what}: ${(e as Error).message}`);
      }
    };
    const text = load(config.options.workflow, config.options.workflowFile, 'workflowFile');
    if (!text) throw new ConfigError(`${at}: a comfyui provider needs options.workflowFile (a workflow in ComfyUI's API format)`);
    this.textWorkflow = text;
    this.imageWorkflow = load(config.options.imageWorkflow, config.options.imageWorkflowFile, 'imageWorkflowFile') ?? text;
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const spec = req.task.spec;
    const { w, h } = frameSize(spec.aspectRatio === '9:16' ? '9:16' : '16:9');
    const images: string[] = [];
    for (const input of req.inputs) images.push(await this.upload(input.path, input.contentType));
    const values: Record<string, string | number> = {
      prompt: req.prompt,
      seed: spec.seed,
      width: w,
      height: h,
      seconds: spec.durationSeconds,
      frames: spec.durationSeconds * 24,
      image: images[0] ?? '',
      last_image: images[1] ?? images[0] ?? '',
    };
    const workflow = fill(images.length ? this.imageWorkflow : this.textWorkflow, values);
    const res = await this.http.call('prompt', { json: { prompt: workflow, client_id: 'reelay' } });
    if (res.status !== 200) {
      // A workflow the server rejects fails every task on this route: let another route try.
      const body = res.json as { error?: { message?: string }; node_errors?: unknown } | undefined;
      const detail = body?.error?.message ? `${body.error.message} ${JSON.stringify(body.node_errors ?? {})}` : snippet(res.text);
      throw res.status === 400 ? new TransientError(`${this.name}: the workflow was rejected: ${detail}`) : httpError(`${this.name}: POST /prompt`, res);
    }
    if (res.json === undefined) throw new TransientError(`${this.name}: POST /prompt: the answer is not JSON (${snippet(res.text)})`);
    const id = (res.json as { prompt_id?: unknown } | undefined)?.prompt_id;
    if (typeof id !== 'string' || !id) throw new TransientError(`${this.name}: /prompt answered without a prompt_id`);
    return { upstreamId: id };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    let entry = await this.history(upstreamId);
    if (!entry) {
      // Not run yet: it must still be in the queue, or the server lost it (a restart empties both).
      if (await this.queued(upstreamId)) return { status: 'running' };
      entry = await this.history(upstreamId);
      if (!entry) return { status: 'failed', error: new TransientError(`${this.name}: the server lost prompt ${upstreamId}: it is neither queued nor in the history (a restart?)`) };
    }
    if (entry.status?.status_str === 'error') {
      const err = entry.status.messages?.find(([kind]) => kind === 'execution_error' || kind === 'execution_interrupted')?.[1];
      const message = `${this.name}: the workflow failed${err?.node_type ? ` in ${err.node_type}` : ''}: ${err?.exception_message ?? 'execution error'}`;
      // A safety-checker node that refuses the content says so in its exception.
      return { status: 'failed', error: isSafetyText(err?.exception_message ?? '') ? new SafetyRejectedError(message) : new TransientError(message) };
    }
    if (entry.status && entry.status.completed === false) return { status: 'running' };
    const file = firstVideo(entry);
    if (!file) return { status: 'failed', error: new TransientError(`${this.name}: the workflow ran but produced no video file`) };
    const q = new URLSearchParams({ filename: file.filename!, subfolder: file.subfolder ?? '', type: file.type ?? 'output' });
    return { status: 'succeeded', resultUrl: this.http.url(`view?${q}`).toString() };
  }


  /** Drops the prompt from the queue; interrupts it when it is the one running. */
  async cancel(upstreamId: string): Promise<void> {
    cancelAnswer(`${this.name}: POST /queue`, await this.http.call('queue', { json: { delete: [upstreamId] } }));
    const q = await this.http.call('queue');
    cancelAnswer(`${this.name}: GET /queue`, q);
    const running = (q.json as { queue_running?: unknown[][] } | undefined)?.queue_running ?? [];
    if (running.some((item) => item[1] === upstreamId)) cancelAnswer(`${this.name}: POST /interrupt`, await this.http.call('interrupt', { json: {} }));
  }


  private async history(id: string): Promise<HistoryEntry | undefined> {
    const res = await this.http.call(`history/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw httpError(`${this.name}: GET /history/{id}`, res);
    return (res.json as Record<string, HistoryEntry> | undefined)?.[id];
  }

  private async queued(id: string): Promise<boolean> {
    const q = await this.http.json<{ queue_running?: unknown[][]; queue_pending?: unknown[][] }>('queue');
    return [...(q.queue_running ?? []), ...(q.queue_pending ?? [])].some((item) => Array.isArray(item) && item[1] === id);
  }

  private async upload(path: string, contentType: string): Promise<string> {
    const form = new FormData();
    form.append('image', new Blob([readFileSync(path)], { type: contentType }), `reelay.${contentType.split('/')[1] ?? 'png'}`);
    form.append('overwrite', 'true');
    const encoded = new Response(form);
    const res = await this.http.json<{ name?: string; subfolder?: string }>('upload/image', { body: { data: Buffer.from(await encoded.arrayBuffer()), contentType: encoded.headers.get('content-type')! } });
    if (typeof res.name !== 'string') throw new TransientError(`${this.name}: the image upload answered without a name`);
    return res.subfolder ? `${res.subfolder}/${res.name}` : res.name;
  }
}

/** Fills the placeholders of a workflow (a deep copy). */
export function fill(node: unknown, values: Record<string, string | number>): unknown {
  if (typeof node === 'string') {
    const whole = /^\{\{(\w+)\}\}$/.exec(node);
    if (whole && whole[1]! in values) return values[whole[1]!];
    return node.replace(/\{\{(\w+)\}\}/g, (m, k: string) => (k in values ? String(values[k]) : m));
  }
  if (Array.isArray(node)) return node.map((n) => fill(n, values));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, values)]));
  return node;
}

function firstVideo(entry: HistoryEntry): { filename?: string; subfolder?: string; type?: string } | undefined {
  for (const output of Object.values(entry.outputs ?? {})) {
    for (const files of Object.values(output)) {
      if (!Array.isArray(files)) continue;
      const f = files.find((x: { filename?: unknown }) => typeof x?.filename === 'string' && VIDEO.test(x.filename));
      if (f) return f as { filename: string };
    }
  }
  return undefined;
}
