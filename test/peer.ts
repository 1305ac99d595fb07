import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/**
 * A small HTTP server on 127.0.0.1 that plays an image host or a callback receiver. It records every
 * request; routes are set per path.
 */
export async function peer(routes: Record<string, Handler> = {}) {
  const received: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const path = (req.url ?? '/').split('?')[0]!;
    received.push({ method: req.method ?? '', path, headers: req.headers, body });
    const h = routes[path];
    if (h) h(req, res, body);
    else res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.unref();
  const close = () => new Promise<void>((r) => server.close(() => r()));
  return { url: `http://127.0.0.1:${port}`, port, received, routes, close };
}
