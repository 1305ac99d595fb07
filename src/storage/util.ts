import { Readable } from 'node:stream';

/** Runs `fn` over `items` with at most `limit` at once; rejects with the first error once all settled. */
export async function forEachLimited<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

/** Resolves `{ ok }` for a settled attempt, `{ ok: false, error }` for a failure or after `ms`. */
export async function withTimeout(attempt: Promise<unknown>, ms: number, what: string): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: false; error: string }>((res) => {
    timer = setTimeout(() => res({ ok: false, error: `${what}: no answer within ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([
      attempt.then(
        () => ({ ok: true }),
        (err: unknown) => ({ ok: false, error: `${what}: ${messageOf(err)}` }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A message for an error, including an AggregateError's parts (Node's happy-eyeballs connect errors have an empty message). */
export function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return err.errors.map(messageOf).join('; ');
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = err.message || err.name;
    return code && !msg.includes(code) ? `${msg} (${code})` : msg;
  }
  return String(err);
}

/**
 * A `Content-Disposition: attachment` value for a download name: an ASCII `filename` (other
 * characters replaced by `_`) and an RFC 8187 `filename*` with the exact UTF-8 name.
 */
export function attachment(name: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_');
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/["%]/g, '_');
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * The bytes `skip`..`skip + length - 1` of `src`, as a stream; `src` is destroyed once they are
 * out, or when the result is destroyed. For a server that answers a range with more than asked.
 */
export function sliceStream(src: Readable, skip: number, length: number): Readable {
  let seen = 0;
  let ended = false;
  const out = new Readable({
    read() {
      src.resume();
    },
    destroy(err, cb) {
      src.destroy();
      cb(err);
    },
  });
  const finish = () => {
    if (ended) return;
    ended = true;
    out.push(null);
    src.destroy();
  };
  if (length === 0) finish();
  src.on('data', (chunk: Buffer) => {
    if (ended) return;
    const at = seen;
    seen += chunk.length;
    const from = Math.max(0, skip - at);
    const to = Math.min(chunk.length, skip + length - at);
    if (to > from && !out.push(chunk.subarray(from, to))) src.pause();
    if (seen >= skip + length) finish();
  });
  src.on('end', () => {
    if (!ended) out.destroy(new Error(`the body ended after ${seen} bytes, before byte ${skip + length}`));
  });
  src.on('error', (err) => out.destroy(err));
  return out;
}
