import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output: () => string;
  /** SIGKILL, no chance to clean up. */
  kill9(): Promise<void>;
  /** SIGTERM: drain and exit. */
  stop(): Promise<void>;
}

/** How long a server may take to answer /healthz: generous, since the suite runs on busy machines. */
const START_TIMEOUT_MS = 60_000;
/** How long a SIGTERM drain may take before the server is killed. */
const STOP_TIMEOUT_MS = 30_000;

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/**
 * Ends `child` when this test process exits, if nothing ended it before (a test that failed half-way,
 * say). The runner is started with --test-force-exit, so a file whose tests are done exits even
 * while such a child keeps its pipes open.
 */
export function track<C extends ChildProcess>(child: C): C {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Starts `reelay serve` as a real process and waits until it answers /healthz. A start that fails
 * kills the child before throwing; a child nobody stopped is killed when the test process exits
 * (`track`).
 */
export async function startServer(env: Record<string, string>, port?: number, startTimeoutMs = START_TIMEOUT_MS): Promise<ServerProcess> {
  const p = port ?? (await freePort());
  const child = track(
    spawn(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, PORT: String(p), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const exited = once(child, 'exit');
  exited.catch(() => {}); // a spawn error surfaces in the start loop (the child is not alive)
  const alive = () => child.exitCode === null && child.signalCode === null;
  const kill9 = async () => {
    if (alive()) child.kill('SIGKILL');
    await exited;
  };
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${p}`;
  const deadline = Date.now() + startTimeoutMs;
  try {
    for (;;) {
      if (!alive()) throw new Error(`server (pid ${child.pid}) exited ${child.exitCode ?? child.signalCode}: ${out}`);
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
        if (res.ok) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`server (pid ${child.pid}) did not start within ${startTimeoutMs / 1000} s: ${out}`);
      await sleep(50);
    }
  } catch (e) {
    await kill9();
    throw e;
  }
  return {
    url,
    port: p,
    child,
    output: () => out,
    kill9,
    async stop() {
      if (alive()) child.kill('SIGTERM');
      const timer = setTimeout(() => alive() && child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value that is not undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(everyMs);
  }
}

/**
 * A client's callback receiver on loopback: every POST's body, by the task id in its `data`
 * (`?` for a body without one, or not JSON). `close` stops it.
 */
export async function startCallbackReceiver(): Promise<{ url: string; byTask: Map<string, string[]>; close(): Promise<void> }> {
  const byTask = new Map<string, string[]>();
  const receiver = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      let id = '?';
      try {
        id = (JSON.parse(body) as { data?: { taskId?: string } }).data?.taskId ?? '?';
      } catch {
        // not JSON: kept under '?'
      }
      byTask.set(id, [...(byTask.get(id) ?? []), body]);
      res.end('ok');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await new Promise((r) => receiver.once('listening', r));
  return {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb`,
    byTask,
    close: () => new Promise<void>((r) => receiver.close(() => r())),
  };
}
