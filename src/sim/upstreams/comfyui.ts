import type { FastifyInstance, FastifyReply } from 'fastify';
import { randomBytes } from '../../core/ids.js';
import type { SimJob } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';

function comfyError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.status(status).send({ error: { type: 'server_error', message, details: '', extra_info: {} }, node_errors: {} });
}

const refuse: Refuse = (reply, status, message) => comfyError(reply, status, message);

type Workflow = Record<string, { class_type?: unknown; inputs?: Record<string, unknown> }>;

/** The text a workflow carries (fault tags are read from it) and its frame size. */
function readWorkflow(w: Workflow): { text: string; aspect: '16:9' | '9:16' } {
  const strings: string[] = [];
  let width = 16;
  let height = 9;
  for (const node of Object.values(w)) {
    for (const [k, v] of Object.entries(node.inputs ?? {})) {
      if (typeof v === 'string') strings.push(v);
      if (k === 'width' && typeof v === 'number') width = v;
      if (k === 'height' && typeof v === 'number') height = v;
    }
  }
  return { text: strings.join(' '), aspect: height > width ? '9:16' : '16:9' };
}

/**
 * A ComfyUI server (a user's own GPU): `POST /prompt` with an API-format workflow, `GET
 * /history/{id}` (empty until the prompt has run), `GET /queue`, `GET /view?filename=…` for
 * outputs, `POST /upload/image`, and `POST /queue {delete}` / `POST /interrupt` to cancel.
 * Every workflow must have a node whose class ends in `Save…` or `VideoCombine`.
 */
export async function comfyuiSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const uploads = new Set<string>();
  // ComfyUI itself has no keys; behind a proxy that checks one, a wrong key is refused.
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.authorization !== undefined && !ctx.authorized(req)) return reply.status(401).send('401: Unauthorized');
  });

  app.post('/prompt', async (req, reply) => {
    const body = (req.body ?? {}) as { prompt?: unknown };
    const workflow = body.prompt as Workflow | undefined;
    if (!workflow || typeof workflow !== 'object' || Array.isArray(workflow)) return comfyError(reply, 400, 'No prompt provided');
    const output = Object.entries(workflow).find(([, n]) => typeof n.class_type === 'string' && /(^Save|VideoCombine$)/.test(n.class_type));
    if (!output) {
      return reply.status(400).send({ error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, node_errors: {} });
    }
    for (const [id, n] of Object.entries(workflow)) {
      const image = n.inputs?.image;
      if (n.class_type === 'LoadImage' && (typeof image !== 'string' || !uploads.has(image))) {
        return reply.status(400).send({ error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: { [id]: { errors: [{ type: 'value_not_in_list', message: `Value not in list: image: '${String(image)}' not in list` }], class_type: 'LoadImage' } } });
      }
    }
    const { text, aspect } = readWorkflow(workflow);
    const job = await ctx.admit(req, reply, { id: randomBytes(16).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'), upstream: 'comfyui', model: 'workflow', prompt: text, aspect, request: { output: output[0] } }, refuse);
    if (!job) return reply;
    return { prompt_id: job.id, number: ctx.jobs.size, node_errors: {} };
  });

  const historyEntry = (job: SimJob) => {
    const s = ctx.jobs.status(job, Date.now());
    if (s.state === 'running' || s.state === 'lost') return undefined;
    const outputNode = (job.request as { output: string }).output;
    if (s.state === 'failed') {
      return { prompt: [], outputs: {}, status: { status_str: 'error', completed: false, messages: [['execution_error', { prompt_id: job.id, node_id: outputNode, node_type: 'KSampler', exception_message: s.message, exception_type: 'RuntimeError' }]] } };
    }
    return {
      prompt: [],
      outputs: { [outputNode]: { gifs: [{ filename: `reelay_${job.id}.mp4`, subfolder: 'video', type: 'output', format: 'video/h264-mp4' }] } },
      status: { status_str: 'success', completed: true, messages: [['execution_success', { prompt_id: job.id }]] },
    };
  };

  app.get<{ Params: { id: string } }>('/history/:id', async (req, reply) => {
    const job = ctx.jobs.get(req.params.id);
    if (job && ctx.pollFails(job)) return comfyError(reply, 500, 'Internal Server Error');
    const entry = job && job.upstream === 'comfyui' ? historyEntry(job) : undefined;
    return entry ? { [job!.id]: entry } : {};
  });

  app.get('/queue', async () => {
    const running: unknown[] = [];
    const pending: unknown[] = [];
    // Only jobs still running are in the queue; a lost job is in neither the queue nor the history.
    for (const id of ctx.jobs.ids('comfyui')) {
      const job = ctx.jobs.get(id)!;
      const s = ctx.jobs.status(job, Date.now());
      if (s.state === 'running') (s.progress < 10 ? pending : running).push([0, id, {}, {}, [(job.request as { output: string }).output]]);
    }
    return { queue_running: running, queue_pending: pending };
  });

  app.get('/view', async (req, reply) => {
    const q = req.query as { filename?: string; type?: string };
    const id = /^reelay_(.+)\.mp4$/.exec(q.filename ?? '')?.[1];
    const job = id ? ctx.jobs.get(id) : undefined;
    if (!job || q.type !== 'output' || ctx.jobs.status(job, Date.now()).state !== 'succeeded') return reply.status(404).send('404: Not Found');
    return ctx.sendVideo(job, reply);
  });

  app.post('/upload/image', async (req, reply) => {
    const form = req.body;
    const image = form instanceof FormData ? form.get('image') : null;
    if (!image || typeof image === 'string') return reply.status(400).send('no image');
    const name = `${randomBytes(4).toString('hex')}_${image.name || 'image.png'}`;
    uploads.add(name);
    return { name, subfolder: '', type: 'input' };
  });

  app.post('/queue', async (req) => {
    const ids = (req.body as { delete?: unknown } | undefined)?.delete;
    for (const id of Array.isArray(ids) ? ids : []) {
      const job = typeof id === 'string' ? ctx.jobs.get(id) : undefined;
      if (job && ctx.jobs.status(job, Date.now()).state === 'running') job.cancelled = true;
    }
    return {};
  });

  app.post('/interrupt', async () => ({}));
}
