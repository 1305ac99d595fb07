import type { Task } from '../core/task.js';
import { html, type Html } from './html.js';

/** `3 s`, `4 min`, `2 h`, `5 d`: a span of time, rounded down to its largest unit. */
export function span(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** `2026-12-04 01:30:04 UTC`. */
export function when(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A time as a `<time>` element: the absolute time in its title, how long ago as its text. */
export function ago(ms: number, now: number): Html {
  return html`<time datetime="${new Date(ms).toISOString()}" title="${when(ms)}">${span(now - ms)} ago</time>`;
}

/** Created → completed, or → now while it runs. */
export function duration(task: Task, now: number): string {
  return span((task.completedAt ?? now) - task.createdAt);
}

/** A state as a colored badge. */
export function stateBadge(state: Task['state']): Html {
  return html`<span class="badge state-${state}">${state}</span>`;
}
