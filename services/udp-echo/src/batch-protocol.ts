/** What the batch engine's main thread (batch-echo.ts) and its worker (batch-worker.ts) share. */
import type { PortRange } from '@net/core';
import type { RateLimits } from './rate-limiter.js';

/** Slots of the shared Float64Array of counters; dropped datagrams take DROP_REASONS.length slots from DROPPED. */
export const COUNTER = {
  RECEIVED: 0,
  RECEIVED_BYTES: 1,
  SENT: 2,
  SENT_BYTES: 3,
  /** Sources in the rate limiter's table (a gauge). */
  SOURCES: 4,
  DROPPED: 5,
  /** Index of `send_queue_full` in DROP_REASONS (server.ts). */
  SEND_QUEUE_FULL_REASON: 4,
} as const;

/** The worker's start-up data (structured-cloned; the two buffers are shared). */
export interface BatchWorkerData {
  fds: number[];
  guardPorts: PortRange[];
  limits: RateLimits | undefined;
  sources: number;
  batchSize: number;
  /** Float64Array slots, see COUNTER. */
  counters: SharedArrayBuffer;
  /** Int32Array: [0] = 1 asks the worker to stop. */
  control: SharedArrayBuffer;
}

/** Messages from the worker. */
export type WorkerReport =
  | { type: 'ready' }
  | { type: 'errors'; counts: [code: string, count: number][]; last: { code: string; message: string } | undefined };
