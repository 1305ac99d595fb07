import type { LedgerClose } from '../core/credits.js';
import type { Artifact, Attempt, Task, TaskEvent } from '../core/task.js';

/**
 * The store port: everything the engine, the dialects and the CLI need from a database.
 * `store/sqlite/` (the embedded default) and `store/postgres/` (shared by many processes)
 * implement it, and `contract.test.ts` runs the same suite against both.
 *
 * Guarantees every implementation must keep:
 * - **Idempotent create**: `createTask` with an id that exists returns `false` and changes nothing.
 * - **Atomic claim**: `claimDue` hands a due task to exactly one owner until its lease ends; a task
 *   whose lease has expired (its owner died) is due again.
 * - **Fenced commits**: `commitStep` applies only while the caller still holds the lease, and applies
 *   the task patch, the attempt, the artifacts and the deliveries all together or not at all. A
 *   canceled task takes only the commit of its cancel step (`ofCanceled`).
 * - **Tenant isolation**: every read by a client names the tenant; another tenant's task is absent.
 * - **A rendition asked for is never dropped**: a commit that would leave a succeeded task with a
 *   pending rendition (`hdState` or `uhdState`) not due (`nextRunAt: null`) makes it due at once
 *   instead, so a request that lands while another step of the task runs is still served.
 * - **One clock for schedules**: `next_run_at` and `lease_until` of every task are kept on the
 *   store's clock. A store shared by several machines moves each caller's times onto its own
 *   clock (the database's), so an engine whose clock runs ahead cannot take a lease early.
 * - **Migrations once**: `migrate` applies the pending numbered migrations, and many processes
 *   calling it at once apply each migration once. A shared store is not migrated by opening it
 *   (`reelay migrate`, or `serve` at start, calls `migrate`); the embedded SQLite file, which one
 *   process owns, is migrated when it is opened.
 */
export interface Store {
  /** What callers may assume of this store (see `StoreCapabilities`). */
  readonly capabilities: StoreCapabilities;
  /**
   * Applies pending migrations; returns how many. Safe to call on every start, and from many
   * processes at once (one applies them, the others wait and find nothing to do).
   */
  migrate(): Promise<number>;
  /** Resolves when the database answers (a readiness check); rejects with why it does not. */
  ping?(): Promise<void>;
  /**
   * Optional, where many processes share the store: `signal` tells the other processes' engines
   * about work now, rather than at their next look (best effort: it never fails or delays the
   * caller, and engines still look every tick); `onSignal` hears the other processes' signals
   * (never this process's own) until the returned function is called.
   */
  signal?(s: StoreSignal): void;
  onSignal?(fn: (s: StoreSignal) => void): () => void;
  close(): Promise<void>;

  // --- API keys ---
  /**
   * Stores a key. A key with the same hash is left as it is, except that an `env` key (one the
   * configuration lists) revoked earlier is live again.
   */
  insertKey(key: ApiKeyRow): Promise<void>;
  /** The live (not revoked) key with this hash, or undefined. */
  findKeyByHash(hash: string): Promise<ApiKeyRow | undefined>;
  /** Every key, revoked ones included, oldest first. */
  listKeys(): Promise<ApiKeyRow[]>;
  /** Revokes by id or by prefix; returns how many keys were revoked. */
  revokeKey(idOrPrefix: string, now: number): Promise<number>;

  // --- tasks ---
  /**
   * Inserts a task; false when a task with that id already exists (nothing changes). With
   * `lease`, the task is leased to that owner until then (an engine takes the new task from the
   * creating process's hand, with no claim). With `once`, the answer to the request that
   * created it is written to its idempotency key in the same transaction; when the caller no
   * longer holds the key (`once.ref.token`), nothing is written and it rejects with `KeyLostError`.
   */
  /**
   * Stores a new task. A task with a `charge` reserves it from its tenant's balance in the same
   * transaction (a `reserve` entry and a `ledger` event): too few credits, or no account, is an
   * `InsufficientCreditsError`, and nothing is stored.
   */
  createTask(task: Task, lease?: { owner: string; until: number }, once?: OnceAnswer): Promise<boolean>;
  getTask(tenantId: string, id: string): Promise<Task | undefined>;
  /**
   * Optional: the task when this store already holds it in memory, without a promise; `undefined`
   * means "not at hand" (call `getTask`), never "does not exist". The polling path uses it. Only
   * the read cache offers it, and only over a single-writer store.
   */
  peekTask?(tenantId: string, id: string): Task | undefined;
  /**
   * Claims up to `limit` due tasks (`nextRunAt <= now`) whose lease is free or has expired, for
   * `leaseMs`, oldest `nextRunAt` first, of one lane: `steps` (everything but downloads, the
   * default) or `fetch` (finished jobs whose video waits, `resultUrl` set).
   */
  claimDue(owner: string, now: number, leaseMs: number, limit: number, lane?: ClaimLane): Promise<Task[]>;
  /** Extends the lease of tasks this owner holds (never shortens one); returns the ids it still holds. */
  extendLeases(owner: string, ids: string[], until: number): Promise<string[]>;
  /** Gives up `owner`'s leases on these tasks (an engine stopping): they are claimable at their time. */
  releaseLeases(owner: string, ids: string[]): Promise<void>;
  /** Applies a step's result atomically if `owner` still holds the lease; releases the lease. */
  commitStep(owner: string, commit: StepCommit): Promise<boolean>;
  /** Upstream jobs running per provider: tasks `generating` with an upstream id. */
  countInFlight(): Promise<Record<string, number>>;
  /**
   * Optional, for a store many processes share (one engine's own counts cannot see the others'
   * jobs): takes a submission slot of a provider for a task the caller holds leased, when fewer
   * than `maxInFlight` of the provider's jobs run (generating tasks with an upstream job, plus the
   * slots of submissions in progress) and, with `ratePerSecond`, a token of the provider's bucket
   * (a burst of one second's worth). The slot lasts until the task's next commit, or until its
   * lease ends (its engine died). Admissions to one provider are serialised; others run beside.
   */
  admitSubmission?(a: AdmitRequest): Promise<Admission>;
  /**
   * Makes the task running this upstream job due now (a provider said it finished). A leased task
   * is woken too: should its engine be dead, it is due as soon as the lease ends; a live engine
   * keeps its own schedule and overwrites this with its next commit. A task due sooner is left.
   */
  wakeByUpstream(provider: string, upstreamId: string, now: number): Promise<void>;
  /**
   * Asks for the 1080p rendition of a succeeded task: sets `hdState` to `pending` and makes the task
   * due. Returns the task as it is afterwards. With `credits`, the call that asks reserves them in
   * the same transaction, as the item `hd:<n>` (the n-th ask): too few is `InsufficientCreditsError`,
   * and nothing is asked.
   */
  requestHd(tenantId: string, id: string, now: number, credits?: number): Promise<Task | undefined>;
  /**
   * Asks for the 4k rendition of a succeeded task, as `requestHd` does for 1080p (`credits`
   * reserved as the item `uhd:<n>`); `callbackUrl`
   * (when given) is where its callback goes. A rendition pending or stored is left as it is:
   * `asked` says whether this call was the one that asked (of two at once, only one is).
   */
  requestUhd(tenantId: string, id: string, now: number, callbackUrl: string | null, credits?: number): Promise<{ task: Task; asked: boolean } | undefined>;
  /**
   * Cancels a task that has not ended: it is `canceled` at once (`completedAt` now,
   * `cancelOutcome` `pending`), its lease is taken away, so a step of it running now cannot
   * commit, and it is due at once for the step that stops its work. `canceled` says whether this
   * call canceled it: false when it had ended already (it succeeded or failed first) or another
   * cancel came first; `before`, the state this call canceled it in. With `deleteAfter`, a task
   * canceled by this call or still `pending` is deleted once its work is stopped. Undefined when
   * there is no such task.
   */
  cancelTask(tenantId: string, id: string, now: number, o?: { deleteAfter?: boolean }): Promise<{ task: Task; canceled: boolean; before?: Task['state'] } | undefined>;
  /**
   * One page of a tenant's tasks by creation time (ties by id): up to `limit`, starting after the
   * task `after` (a cursor). Undefined when `after` names no task of this tenant. A `null` tenant
   * is every tenant's tasks: the dashboard's view for an operator key, never a client's read.
   */
  listTasks(tenantId: string | null, page: TaskPage): Promise<Task[] | undefined>;
  /**
   * Deletes a task that is not running (terminal or expired) with its attempts, artifacts and
   * deliveries; its files are removed by the caller first. False when no such task is there, it
   * is running, or it was canceled and its work is still to be stopped (`cancelOutcome` `pending`).
   */
  deleteTask(tenantId: string, id: string): Promise<boolean>;
  listAttempts(taskId: string): Promise<Attempt[]>;
  /**
   * A tenant's tasks changed at or after `since` (`updatedAt`), oldest change first, up to
   * `limit`: what a key's event stream sends.
   */
  changedTasks(tenantId: string, since: number, limit: number): Promise<Task[]>;
  /** A task's audit trail (see `TaskEvent`), oldest first. */
  listEvents(taskId: string): Promise<TaskEvent[]>;
  /** A task's artifacts by kind; a commit's artifact replaces the one of the same kind. */
  listArtifacts(taskId: string): Promise<Artifact[]>;

  /**
   * Lets a queued task of a tenant start when fewer than `limit` of the tenant's tasks are under
   * way (not ended, and started: past `queued`, or let through here before) or older and still
   * waiting (places go oldest first): it is marked as started (`admitted`) and true is returned.
   * A task let through once is let through again. The limit holds exactly across processes: of
   * two asks at once, the younger task's counts the older one.
   */
  admitTenant(tenantId: string, taskId: string, limit: number): Promise<boolean>;

  // --- credits ---
  /** The tenant's credit account, when it has one (a tenant without one is not metered). */
  creditAccount(tenantId: string): Promise<CreditAccount | undefined>;
  /**
   * Adds `amount` to the tenant's balance (negative: takes it away, never below 0), with a
   * `topup` entry; opens the account at 0 first when there is none. Returns the account.
   */
  addCredits(tenantId: string, amount: number, now: number, note: string | null): Promise<CreditAccount>;
  /** The tenant's ledger, newest first, before the entry `before` (a cursor), up to `limit`; of one task with `taskId`. */
  listLedger(tenantId: string, page: { before?: number; limit: number; taskId?: string }): Promise<LedgerEntry[]>;

  // --- retention ---
  /**
   * Terminal tasks completed before `before` that still have files, oldest first; a leased task
   * (a rendition being made) is left for a later sweep.
   */
  listExpiring(before: number, limit: number): Promise<Task[]>;
  /**
   * Marks terminal tasks `expired`, empties their `images` (the inputs' URLs go with the files)
   * and deletes their artifact rows; the caller removes the files first.
   */
  markExpired(ids: string[], now: number): Promise<void>;
  /**
   * Deletes up to 1000 expired tombstones completed before `before`, with their attempts,
   * artifacts and deliveries; returns how many.
   */
  purgeTombstones(before: number): Promise<number>;

  // --- idempotency keys ---
  /**
   * Takes an idempotency key for a request, or says what holds it: `new` (the caller holds it
   * now, under `token`, until `heldUntil`; a key that expired, or whose holder let its hold run
   * out without an answer, is taken over), `replay` (a request with the same fingerprint was
   * answered), `busy` (one with the same fingerprint is still running) or `mismatch` (the key
   * went with another request).
   */
  takeKey(k: KeyClaim): Promise<KeyState>;
  /** Records the answer of a request that holds its key (`token`); false when it no longer does. */
  answerKey(once: OnceAnswer): Promise<boolean>;
  /** Lets go of a key held without an answer (the request stored nothing): a retry starts anew. */
  dropKey(ref: KeyRef): Promise<void>;
  /** Deletes up to 1000 keys that expired by `now`; returns how many. */
  purgeKeys(now: number): Promise<number>;

  // --- webhook signing ---
  /**
   * The tenant's live signing secrets, newest first: the current one, and those rotated out whose
   * `retire_at` is still ahead. A tenant without one is given one now (`secret`), once even
   * when many ask at once.
   */
  webhookSecrets(tenantId: string, now: number, secret: string): Promise<string[]>;
  /**
   * Makes `secret` the tenant's current one; the others sign beside it until `now + overlapMs`
   * (those with an earlier end keep it). Returns the live secrets, newest first.
   */
  rotateWebhookSecret(tenantId: string, secret: string, now: number, overlapMs: number): Promise<string[]>;
  /** The tenant a task belongs to (a delivery knows its task only), or undefined. */
  tenantOfTask(taskId: string): Promise<string | undefined>;

  // --- webhook endpoints ---
  createEndpoint(e: WebhookEndpoint): Promise<void>;
  /** A tenant's endpoints, oldest first; every tenant's without one (the engines' cache). */
  listEndpoints(tenantId?: string): Promise<WebhookEndpoint[]>;
  /** Deletes one of the tenant's endpoints; false when it has no such endpoint. */
  deleteEndpoint(tenantId: string, id: string): Promise<boolean>;
  /**
   * Disables an endpoint (a 410 answer): the deliveries still owed to it fail, each with an entry
   * in its task's audit trail, in the same transaction; none are owed to it afterwards.
   */
  disableEndpoint(id: string, now: number, reason: string): Promise<void>;

  // --- deliveries ---
  /**
   * Leases up to `limit` pending deliveries due by `now` (whose lease is free or has expired) for
   * `leaseMs`, oldest due first: each goes to one sender at a time.
   */
  claimDueDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]>;
  /** Records a try of a delivery and its next schedule; frees its lease. */
  finishDelivery(result: DeliveryResult): Promise<void>;
  /** A task's deliveries in the order they were owed. */
  listDeliveries(taskId: string): Promise<Delivery[]>;
  /**
   * Sends a delivery of the task again, now (`status` pending, due at once): the same body and
   * `webhook-id`, signed anew by its next try. One that had used up its tries gets one more. The
   * delivery as it now stands; undefined when the task has no such delivery.
   */
  resendDelivery(taskId: string, id: number, now: number): Promise<Delivery | undefined>;

  // --- dashboard ---
  /** Stores a new dashboard session (its token's hash is new: 256 random bits). */
  createSession(s: DashboardSession): Promise<void>;
  /**
   * The session with this token hash and the key it was opened with, while it lasts
   * (`idleUntil` after `now`) and its key is live: a revoked key's sessions end with it.
   */
  findSession(tokenHash: string, now: number): Promise<{ session: DashboardSession; key: ApiKeyRow } | undefined>;
  /** Moves a session's idle end on to `idleUntil`, never past its `expiresAt`. */
  touchSession(tokenHash: string, idleUntil: number): Promise<void>;
  /** Ends a session (sign-out); nothing when there is none. */
  deleteSession(tokenHash: string): Promise<void>;
  /** Deletes up to 1000 sessions ended by `now`; returns how many. */
  purgeSessions(now: number): Promise<number>;
  /**
   * The dashboard's overview of a tenant's tasks (`null`: every tenant's) created since
   * `w.dayFrom`: their states since `w.hourFrom` and `w.dayFrom`, success rate and time to result
   * per model and per provider, and the credits charged by closes since `w.dayFrom`.
   */
  taskStats(tenantId: string | null, w: { hourFrom: number; dayFrom: number }): Promise<TaskStats>;
}

/**
 * A person signed in to the dashboard with a key. The cookie holds a random token; the store
 * keeps its SHA-256 only. Default lifetime: 12 h idle, 7 days at most (`dashboard/session.ts`).
 */
export interface DashboardSession {
  tokenHash: string;
  keyId: string;
  tenantId: string;
  createdAt: number;
  /** The session ends then unless it is used (each use moves it on). */
  idleUntil: number;
  /** The session ends then, used or not. */
  expiresAt: number;
}

/** Success and time to result of one model's or provider's tasks (see `Store.taskStats`). */
export interface GroupStats {
  name: string;
  /** Tasks that succeeded or failed (canceled and expired ones are left out). */
  ended: number;
  succeeded: number;
  /** Nearest-rank percentiles of created → completed of the succeeded ones; null: none. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface TaskStats {
  /** Tasks created in the last hour and the last day, by the state they are in now. */
  states: { state: Task['state']; hour: number; day: number }[];
  models: GroupStats[];
  providers: GroupStats[];
  /** Credits charged by the reservations closed in the last day. */
  creditsCharged: number;
}

/** An idempotency key as one request holds it: scoped to its tenant and endpoint. */
export interface KeyRef {
  tenantId: string;
  /** The endpoint (`kie.generate`, `openai.create`): the same key may be used at each. */
  scope: string;
  key: string;
  /** Random, per request: says which request holds the key. */
  token: string;
}

export interface KeyClaim extends KeyRef {
  /** A digest of the request (method, path, body): a repeat must carry the same one. */
  fingerprint: string;
  now: number;
  /** Until when the request holds the key without an answer (then another may take it over). */
  heldUntil: number;
  /** When the key is forgotten (24 h after it was taken, by default). */
  expiresAt: number;
}

/** The answer a request gave, sent again byte for byte to its repeats. */
export interface StoredAnswer {
  status: number;
  body: string;
  /** The task the request created, when it did. */
  taskId: string | null;
}

export interface OnceAnswer {
  ref: KeyRef;
  answer: StoredAnswer;
}

export type KeyState = { kind: 'new' } | { kind: 'replay'; answer: StoredAnswer } | { kind: 'busy' } | { kind: 'mismatch' };

/** The request no longer holds its idempotency key (its hold ran out and another took it over). */
/**
 * A metered create found too few credits (or no account) for its reservation: nothing was
 * stored. `balance` is what the account holds.
 */
export class InsufficientCreditsError extends Error {
  override name = 'InsufficientCreditsError';
  constructor(readonly needed: number, readonly balance: number) {
    super(`this task costs ${needed} credits and the balance is ${balance}`);
  }
}

/** A tenant's credit account: a tenant without one is not metered. */
export interface CreditAccount {
  tenantId: string;
  balance: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * One entry of a tenant's credits ledger, append-only: a `topup` (or an adjustment, negative), a
 * task's `reserve` at create (negative), and its one close at its end, `settle` (what it did not
 * cost back) or `refund` (all of it back). `amount` is the change to the balance; `charged` what
 * the task cost in the end (closes only).
 */
export interface LedgerEntry {
  id: number;
  tenantId: string;
  taskId: string | null;
  /** What a task's entry is for: `video`, `extend`, or a rendition asked after success (`hd:1`, `uhd:2`). */
  item: string | null;
  kind: 'topup' | 'reserve' | 'settle' | 'refund';
  amount: number;
  charged: number | null;
  at: number;
  note: string | null;
}

export class KeyLostError extends Error {
  override name = 'KeyLostError';
  constructor(readonly ref: KeyRef) {
    super(`idempotency key ${ref.key} is held by another request`);
  }
}

export interface AdmitRequest {
  provider: string;
  taskId: string;
  /** The engine that holds the task's lease. */
  owner: string;
  maxInFlight: number;
  ratePerSecond?: number;
  now: number;
}

export type Admission = { ok: true } | { ok: false; waitMs: number; why: string };

/**
 * What one process tells the others' engines:
 * - `due`: a task is due now (created by an API process, a rendition asked for);
 * - `upstream`: an upstream said this job has news (a callback reached this process): the engine
 *   that holds its task in memory polls it now.
 * - `canceled`: a task was canceled: the engine that holds it in memory lets it go, and one
 *   claims it to stop its work.
 */
export type StoreSignal = { kind: 'due' } | { kind: 'upstream'; provider: string; upstreamId: string } | { kind: 'canceled'; taskId: string };

export interface StoreCapabilities {
  /**
   * This process is the only writer of the store (SQLite: one process per file). Only then may a
   * caller keep copies of tasks (the read cache) or count in-flight jobs in memory.
   */
  singleWriter: boolean;
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
    | 'cancelOutcome'
  >
>;

export type ClaimLane = 'steps' | 'fetch';

export interface TaskPage {
  limit: number;
  order: 'asc' | 'desc';
  /** The id of the last task of the previous page. */
  after?: string;
  /** Only the tasks that match every field given (states: any of them; times: ms, inclusive). */
  filter?: TaskFilter;
}

export interface TaskFilter {
  states?: Task['state'][];
  model?: string;
  provider?: string;
  dialect?: string;
  createdFrom?: number;
  createdTo?: number;
  /** A task id, or a part of its prompt (case-insensitive for ASCII letters). */
  search?: string;
}


export interface StepCommit {
  taskId: string;
  patch: TaskPatch;
  /**
   * The commit of a canceled task's step (the one that stops its work). Any other commit is
   * fenced out of a canceled task too, lease or not: a step that ran while the task was canceled
   * (and claimed again by the same engine) cannot undo the cancel.
   */
  ofCanceled?: true;
  /** Keep the lease until then (the engine runs the next step at once) instead of releasing it. */
  keepLeaseUntil?: number;
  /**
   * Keep the lease as it stands (the caller knows it lasts long enough): the commit leaves
   * `lease_until` alone, which spares the lease index a write on every poll.
   */
  keepLease?: boolean;
  /** Logged with the next free `n` for the task (the `n` given here is ignored). */
  attempt?: Attempt;
  /** Appended to the task's audit trail (the store numbers them). */
  events?: NewTaskEvent[];
  /**
   * Closes the task's reservation (see `core/credits.ts`): a ledger entry, the balance credited
   * with its amount, and a `ledger` event, applied only with the commit and only once per task
   * (the database refuses a second close, which then changes nothing).
   */
  close?: LedgerClose;
  artifacts?: Artifact[];
  deliveries?: NewDelivery[];
  /**
   * Insert the deliveries already leased until then: the committing process sends them itself,
   * without claiming them. The store sets each delivery's `id`.
   */
  deliveriesLeasedUntil?: number;
}

/** A URL of a tenant's that is sent the task events it subscribed to (`video.completed`, …). */
export interface WebhookEndpoint {
  id: string;
  tenantId: string;
  url: string;
  events: string[];
  createdAt: number;
  disabledAt: number | null;
  disabledReason: string | null;
}

export interface NewDelivery {
  /** Set by the store when the delivery is inserted. */
  id?: number;
  taskId: string;
  /** The endpoint it goes to, when it is owed to one (else it is the task's own callback). */
  endpointId?: string | null;
  url: string;
  body: string;
  createdAt: number;
}

export interface Delivery extends NewDelivery {
  id: number;
  /** The tenant of its task, set when it was owed (null on rows owed before migration 015/013). */
  tenantId?: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastStatus: number | null;
  deliveredAt: number | null;
}

/** An event to append (`TaskEvent` without its number). */
export type NewTaskEvent = Omit<TaskEvent, 'id'>;

export interface DeliveryResult {
  id: number;
  /** When the try ended: the time of its entry in the task's audit trail. */
  at?: number;
  /** How long the try took, for the audit trail. */
  ms?: number;
  attempts: number;
  status: Delivery['status'];
  nextAttemptAt: number | null;
  lastError: string | null;
  lastStatus: number | null;
  deliveredAt: number | null;
}
