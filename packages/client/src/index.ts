/**
 * `@reelay/client`: a zero-dependency client of Reelay's own API (`/reelay/v1`), on the Web APIs
 * alone (`fetch`, `AbortSignal`, `crypto.subtle`), so it runs on Node 20+ and edge runtimes;
 * `download` writes files with `node:fs`.
 */
export { Reelay, type ClientOptions, type CreateOptions, type DownloadOptions, type GenerateOptions, type LedgerParams } from './client.js';
export { ReelayError, TaskCanceledError, TaskExpiredError, TaskFailedError, WaitTimeoutError, WebhookVerificationError, type ReelayErrorInit } from './errors.js';
export { TaskPage } from './pages.js';
export { TERMINAL_STATES, isTerminal } from './types.js';
export type { Balance, CancelOutcome, CreateParams, Delivery, ErrorKind, LedgerEntry, LedgerPage, ListParams, Page, Task, TaskEvent, TaskState, Variant, WebhookEvent } from './types.js';
export type { WaitOptions } from './wait.js';
export { verifyWebhook, webhooks, type VerifyOptions, type WebhookHeaders } from './webhooks.js';
