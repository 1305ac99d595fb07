import type { FastifyReply, FastifyRequest } from 'fastify';

/** How often a comment goes out on a quiet stream, so proxies do not close it. */
const KEEP_ALIVE_MS = 15_000;

/**
 * A Server-Sent Events answer. Made at the start of its route, before anything is awaited, so a
 * client gone while the route reads what to send is seen (`closed`) and no loop is left running.
 * `open` takes the reply over and sends the head; it is false when the client has gone already.
 */
export class EventStream {
  private gone = false;
  private beat = Date.now();

  constructor(
    req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {
    req.raw.once('close', () => (this.gone = true));
  }

  get closed(): boolean {
    return this.gone;
  }

  open(): boolean {
    this.reply.hijack();
    const res = this.reply.raw;
    if (this.gone || res.destroyed) {
      res.end();
      return false;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    return true;
  }

  /** One event: its `id` (when given), its name and its data as JSON. */
  send(event: string, data: unknown, id?: number): void {
    this.reply.raw.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A comment, when the stream has been quiet long enough. */
  keepAlive(): void {
    if (Date.now() - this.beat < KEEP_ALIVE_MS) return;
    this.reply.raw.write(': still here\n\n');
    this.beat = Date.now();
  }

  end(): void {
    this.reply.raw.end();
  }
}
