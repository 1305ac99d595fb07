import type { Task } from '../core/task.js';

interface Entry {
  task: Task;
  due: number;
  /** Until when the store's lease on the task is ours. */
  leaseUntil: number;
  /** Cleared when the entry is taken out or replaced (the heap drops it lazily). */
  live: boolean;
}

/** A task to hold, with the end of its lease. */
export interface Held {
  task: Task;
  leaseUntil: number;
}

/**
 * Tasks an engine keeps between steps: leased to it in the store, waiting in memory for their
 * next step's time (a min-heap by due time). They start from here without a claim; the store
 * still holds each one's state and schedule, so a restarted engine finds them once their leases
 * end.
 */
export class HeldTasks {
  private readonly heap: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  private readonly byUpstream = new Map<string, Entry>();

  get size(): number {
    return this.byId.size;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** Keeps `task` until its `nextRunAt`. */
  add(task: Task, leaseUntil: number): void {
    this.remove(task.id);
    const e: Entry = { task, due: task.nextRunAt ?? 0, leaseUntil, live: true };
    this.byId.set(task.id, e);
    if (task.upstreamId) this.byUpstream.set(upstreamKey(task.provider, task.upstreamId), e);
    this.push(e);
  }

  /** The held task waiting on that upstream job, if any. */
  findUpstream(provider: string, upstreamId: string): Task | undefined {
    return this.byUpstream.get(upstreamKey(provider, upstreamId))?.task;
  }

  /** Moves a held task's time to `at` (an upstream said its job changed). */
  reschedule(id: string, at: number): void {
    const e = this.byId.get(id);
    if (!e || e.due <= at) return;
    this.add({ ...e.task, nextRunAt: at }, e.leaseUntil);
  }

  remove(id: string): void {
    const e = this.byId.get(id);
    if (!e) return;
    e.live = false;
    this.byId.delete(id);
    if (e.task.upstreamId) {
      const k = upstreamKey(e.task.provider, e.task.upstreamId);
      if (this.byUpstream.get(k) === e) this.byUpstream.delete(k);
    }
  }

  /** When the earliest held task is due (Infinity when none is held). */
  nextDue(): number {
    this.dropDead();
    return this.heap[0]?.due ?? Infinity;
  }

  /** Takes out the earliest task if it is due by `now`, with the end of its lease. */
  takeDue(now: number): Held | undefined {
    this.dropDead();
    const top = this.heap[0];
    if (!top || top.due > now) return undefined;
    this.pop();
    this.remove(top.task.id);
    return { task: top.task, leaseUntil: top.leaseUntil };
  }

  /** Held tasks whose lease ends before `before` (the heartbeat extends them). */
  leasesEndingBefore(before: number): string[] {
    const out: string[] = [];
    for (const [id, e] of this.byId) if (e.leaseUntil < before) out.push(id);
    return out;
  }

  setLease(id: string, until: number): void {
    const e = this.byId.get(id);
    if (e) e.leaseUntil = until;
  }

  private dropDead(): void {
    while (this.heap.length > 0 && !this.heap[0]!.live) this.pop();
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.due <= h[i]!.due) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < h.length && h[l]!.due < h[min]!.due) min = l;
      if (r < h.length && h[r]!.due < h[min]!.due) min = r;
      if (min === i) break;
      [h[min], h[i]] = [h[i]!, h[min]!];
      i = min;
    }
  }
}

function upstreamKey(provider: string, upstreamId: string): string {
  return `${provider}\u0000${upstreamId}`;
}
