import type { Artifact, Attempt, Task } from '../core/task.js';

/**
 * The store port: everything the engine, the dialects and the CLI need from a database.
 * `SqliteStore` implements it today; a PostgreSQL store will implement the same contract, and
 * `contract.test.ts` runs against every implementation.
 *
 * Guarantees every implementation must keep:
 * - **Idempotent create**: `createTask` with an id that exists returns `false` and changes nothing.
 * - **Atomic claim**: `claimDue` hands a due task to exactly one owner until its lease ends; a task
 *   whose lease has expired (its owner died) is due again.
 * - **Fenced commits**: `commitStep` applies only while the caller still holds the lease, and applies
 *   the task patch, the attempt, the artifacts and the deliveries all together or not at all.
 * - **Tenant isolation**: every read by a client names the tenant; another tenant's task is absent.
 * - **A rendition asked for is never dropped**: a commit that would leave a succeeded task with a
 *   pending rendition (`hdState` or `uhdState`) not due (`nextRunAt: null`) makes it due at once
 *   instead, so a request that lands while another step of the task runs is still served.
 */
export interface Store {
  /** Applies pending migrations. Safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // --- API keys ---
  insertKey(key: ApiKeyRow): Promise<void>;
  /** The live (not revoked) key with this hash, or undefined. */
  findKeyByHash(hash: string): Promise<ApiKeyRow | undefined>;
  listKeys(): Promise<ApiKeyRow[]>;
  /** Revokes by id or by prefix; returns how many keys were revoked. */
  revokeKey(idOrPrefix: string, now: number): Promise<number>;

  // --- tasks ---
  /** Inserts a new task. Returns false when a task with that id already exists. */
  /**
   * Inserts a task; with `lease`, leased to that owner until then (an engine takes the new task
   * from the creating process's hand, with no claim).
   */
  createTask(task: Task, lease?: { owner: string; until: number }): Promise<boolean>;
  getTask(tenantId: string, id: string): Promise<Task | undefined>;
  /**
   * Optional: the task when this store already holds it in memory, without a promise; `undefined`
   * means "not at hand" (call `getTask`), never "does not exist". The polling path uses it.
   */
  peekTask?(tenantId: string, id: string): Task | undefined;
  /** Claims up to `limit` tasks whose `nextRunAt <= now` and whose lease is free or expired. */
  /**
   * Claims due tasks of one lane: `steps` (everything but downloads, the default) or `fetch`
   * (finished jobs whose video waits, `resultUrl` set).
   */
  claimDue(owner: string, now: number, leaseMs: number, limit: number, lane?: ClaimLane): Promise<Task[]>;
  /** Extends the lease of tasks this owner holds; returns the ids it still holds. */
  extendLeases(owner: string, ids: string[], until: number): Promise<string[]>;
  /** Gives up `owner`'s leases on these tasks (an engine stopping): they are claimable at their time. */
  releaseLeases(owner: string, ids: string[]): Promise<void>;
  /** Applies a step's result atomically if `owner` still holds the lease; releases the lease. */
  commitStep(owner: string, commit: StepCommit): Promise<boolean>;
  /** Upstream jobs running per provider: tasks `generating` with an upstream id. */
  countInFlight(): Promise<Record<string, number>>;
  /** Makes a task due now (a provider finished early). No-op when the task is leased or terminal. */
  wakeByUpstream(provider: string, upstreamId: string, now: number): Promise<void>;
  /**
   * Asks for the 1080p rendition of a succeeded task: sets `hdState` to `pending` and makes the task
   * due. Returns the task as it is afterwards.
   */
  requestHd(tenantId: string, id: string, now: number): Promise<Task | undefined>;
  /**
   * Asks for the 4k rendition of a succeeded task, as `requestHd` does for 1080p; `callbackUrl`
   * (when given) is where its callback goes. A rendition pending or stored is left as it is:
   * `asked` says whether this call was the one that asked (of two at once, only one is).
   */
  requestUhd(tenantId: string, id: string, now: number, callbackUrl: string | null): Promise<{ task: Task; asked: boolean } | undefined>;
  /**
   * One page of a tenant's tasks by creation time (ties by id): up to `limit`, starting after the
   * task `after` (a cursor). Undefined when `after` names no task of this tenant.
   */
  listTasks(tenantId: string, page: TaskPage): Promise<Task[] | undefined>;
  /**
   * Deletes a task that is not running (terminal or expired) with its attempts, artifacts and
   * deliveries; its files are removed by the caller first. False when no such task is there or it
   * is running.
   */
  deleteTask(tenantId: string, id: string): Promise<boolean>;
  listAttempts(taskId: string): Promise<Attempt[]>;
  listArtifacts(taskId: string): Promise<Artifact[]>;

  // --- retention ---
  /** Terminal tasks completed before `before` that still have files, oldest first. */
  listExpiring(before: number, limit: number): Promise<Task[]>;
  /** Marks tasks `expired` and deletes their artifact rows (files are removed by the caller first). */
  markExpired(ids: string[], now: number): Promise<void>;
  /** Deletes expired tombstones (and their attempts and deliveries) completed before `before`. */
  purgeTombstones(before: number): Promise<number>;

  // --- deliveries ---
  claimDueDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]>;
  finishDelivery(result: DeliveryResult): Promise<void>;
  listDeliveries(taskId: string): Promise<Delivery[]>;
}

export interface ApiKeyRow {
  id: string;
  tenantId: string;
  hash: string;
  /** The first characters of the key, enough to recognise it in a list. */
  prefix: string;
  name: string;
  source: 'env' | 'cli' | 'auto';
  createdAt: number;
  revokedAt: number | null;
}

/** A task field update; only the listed fields change. */
export type TaskPatch = Partial<
  Pick<
    Task,
    | 'state'
    | 'spec'
    | 'images'
    | 'upstreamId'
    | 'attemptCount'
    | 'retryCount'
    | 'lastError'
    | 'lastErrorKind'
    | 'failureStage'
    | 'hdState'
    | 'uhdState'
    | 'progress'
    | 'completedAt'
    | 'nextRunAt'
    | 'updatedAt'
    | 'provider'
    | 'routeIndex'
    | 'submittedAt'
    | 'fallback'
    | 'resultUrl'
  >
>;

export type ClaimLane = 'steps' | 'fetch';

export interface TaskPage {
  limit: number;
  order: 'asc' | 'desc';
  /** The id of the last task of the previous page. */
  after?: string;
}

export interface StepCommit {
  taskId: string;
  patch: TaskPatch;
  /** Keep the lease until then (the engine runs the next step at once) instead of releasing it. */
  keepLeaseUntil?: number;
  /**
   * Keep the lease as it stands (the caller knows it lasts long enough): the commit leaves
   * `lease_until` alone, which spares the lease index a write on every poll.
   */
  keepLease?: boolean;
  /** Logged with the next free `n` for the task (the `n` given here is ignored). */
  attempt?: Attempt;
  artifacts?: Artifact[];
  deliveries?: NewDelivery[];
  /**
   * Insert the deliveries already leased until then: the committing process sends them itself,
   * without claiming them. The store sets each delivery's `id`.
   */
  deliveriesLeasedUntil?: number;
}

export interface NewDelivery {
  /** Set by the store when the delivery is inserted. */
  id?: number;
  taskId: string;
  url: string;
  body: string;
  createdAt: number;
}

export interface Delivery extends NewDelivery {
  id: number;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastStatus: number | null;
  deliveredAt: number | null;
}

export interface DeliveryResult {
  id: number;
  attempts: number;
  status: Delivery['status'];
  nextAttemptAt: number | null;
  lastError: string | null;
  lastStatus: number | null;
  deliveredAt: number | null;
}
