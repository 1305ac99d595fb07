import { readFileSync } from 'node:fs';
import { type PollOutcome, PermanentError, SafetyRejectedError, type SubmitRequest, TransientError } from '../port.js';
import { isSafetyText } from '../safety.js';

/** A google.longrunning.Operation as Veo answers it (Gemini API and Vertex AI). */
export interface Operation {
  name?: string;
  done?: boolean;
  error?: { code?: number; message?: string };
  metadata?: { progressPercent?: number };
  response?: {
    generateVideoResponse?: VideoResponse;
  } & VideoResponse;
}

interface VideoResponse {
  generatedSamples?: { video?: { uri?: string; encodedVideo?: string; encoding?: string } }[];
  videos?: { gcsUri?: string; bytesBase64Encoded?: string; mimeType?: string }[];
  raiMediaFilteredCount?: number;
  raiMediaFilteredReasons?: string[];
}

type Image = { bytesBase64Encoded: string; mimeType: string };

/**
 * The `predictLongRunning` body: one instance with the prompt and the images as base64 (first
 * frame, last frame, or up to three asset references), and the parameters. `vertex` adds what
 * only Vertex accepts (the Gemini API refuses `seed` and `generateAudio`).
 *
 * An extension sends the video to continue as `instances[0].video`, its bytes inline under each
 * API's own names: `{encodedVideo, encoding}` on the Gemini API (the wire names of the SDK's
 * `videoBytes`/`mimeType`), `{bytesBase64Encoded, mimeType}` on Vertex. Veo answers with the
 * source followed by the new part.
 */
export function predictBody(req: SubmitRequest, vertex: boolean, storageUri?: string): object {
  const spec = req.task.spec;
  const image = (i: { path: string; contentType: string }): Image => ({ bytesBase64Encoded: readFileSync(i.path).toString('base64'), mimeType: i.contentType });
  const instance: Record<string, unknown> = { prompt: req.prompt };
  if (req.source) {
    const bytes = readFileSync(req.source.path).toString('base64');
    const type = req.source.contentType || 'video/mp4';
    instance.video = vertex ? { bytesBase64Encoded: bytes, mimeType: type } : { encodedVideo: bytes, encoding: type };
  } else if (spec.mode === 'reference') {
    instance.referenceImages = req.inputs.map((i) => ({ image: image(i), referenceType: 'asset' }));
  } else if (req.inputs[0]) {
    instance.image = image(req.inputs[0]);
    if (req.inputs[1]) instance.lastFrame = image(req.inputs[1]);
  }
  return {
    instances: [instance],
    parameters: {
      aspectRatio: spec.aspectRatio === '9:16' ? '9:16' : '16:9',
      durationSeconds: spec.durationSeconds,
      sampleCount: 1,
      ...(vertex ? { seed: spec.seed, generateAudio: true, ...(storageUri ? { storageUri } : {}) } : {}),
    },
  };
}

/**
 * What an operation says: running until `done`; then an error (`code` 3 INVALID_ARGUMENT is the
 * request's fault; a safety text is a safety rejection; the rest may work on another try), a
 * RAI-filtered result (done, no video: a safety rejection), or the video's location.
 */
export function operationOutcome(label: string, op: Operation, video: (r: VideoResponse) => string | undefined): PollOutcome {
  if (!op.done) return { status: 'running', ...(typeof op.metadata?.progressPercent === 'number' ? { progress: op.metadata.progressPercent } : {}) };
  if (op.error) {
    const message = `${label}: the operation failed (code ${op.error.code ?? '?'}): ${op.error.message ?? ''}`;
    if (isSafetyText(op.error.message ?? '')) return { status: 'failed', error: new SafetyRejectedError(message) };
    return { status: 'failed', error: op.error.code === 3 ? new PermanentError(message) : new TransientError(message) };
  }
  const r = op.response?.generateVideoResponse ?? op.response ?? {};
  if ((r.raiMediaFilteredCount ?? 0) > 0) {
    const reasons = (r.raiMediaFilteredReasons ?? []).join(' ') || 'the video was filtered by responsible-AI checks';
    return { status: 'failed', error: new SafetyRejectedError(`${label}: ${reasons}`) };
  }
  const url = video(r);
  if (!url) return { status: 'failed', error: new TransientError(`${label}: the operation finished without a video`) };
  return { status: 'succeeded', resultUrl: url };
}

export type { VideoResponse };
