import type { Task } from '../core/task.js';

/**
 * Memoises a task's serialized answer per task object. The store's read cache hands out the same
 * object until the task changes (any write drops it), so a changed task always gets a fresh answer
 * while a polled, unchanged task is serialized once. Answers must depend on the task alone.
 */
export function memoAnswer(render: (task: Task) => unknown): (task: Task) => string {
  const memo = new WeakMap<Task, string>();
  return (task) => {
    let body = memo.get(task);
    if (body === undefined) {
      body = JSON.stringify(render(task));
      memo.set(task, body);
    }
    return body;
  };
}

export const JSON_TYPE = 'application/json; charset=utf-8';
