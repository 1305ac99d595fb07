import type { FastifyReply } from 'fastify';
import type { Task } from '../core/task.js';

/**
 * Memoises a task's serialized answer per task object. The store's read cache hands out the same
 * object until the task changes (any write drops it), so a changed task always gets a fresh answer
 * while a polled, unchanged task is serialized once. Answers must depend on the task alone.
 */
export function memoAnswer(render: (task: Task) => unknown): (task: Task) => Buffer {
  const memo = new WeakMap<Task, Buffer>();
  return (task) => {
    let body = memo.get(task);
    if (body === undefined) {
      body = Buffer.from(JSON.stringify(render(task)));
      memo.set(task, body);
    }
    return body;
  };
}

/**
 * Sends a 200 JSON answer straight to the socket, past Fastify's reply pipeline (content-type
 * detection, onSend hooks, serializers). Only for the polling routes, whose answers are already
 * serialized and which have no hooks: a poll is the request a gateway answers most.
 */
export function sendJson(reply: FastifyReply, body: Buffer): void {
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': body.length });
  reply.raw.end(body);
}

export const JSON_TYPE = 'application/json; charset=utf-8';
