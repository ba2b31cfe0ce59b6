/** What the batch engine's main thread (batch-echo.ts) and its worker (batch-worker.ts) share. */
import type { PortRange } from '@net/core';
import { DROP_REASONS } from './drop-reasons.js';
import type { DropReportData } from './drop-report.js';
import type { RateLimits } from './rate-limiter.js';

/**
 * Slots of the shared Float64Array of counters; dropped datagrams take one slot per reason from DROPPED on, in
 * DROP_REASONS order (`COUNTER.DROPPED + DROP.table_full`).
 */
export const COUNTER = {
  RECEIVED: 0,
  RECEIVED_BYTES: 1,
  SENT: 2,
  SENT_BYTES: 3,
  /** Sources in the rate limiter's table (a gauge). */
  SOURCES: 4,
  DROPPED: 5,
} as const;
/** Length of the shared counters. */
export const COUNTER_SLOTS = COUNTER.DROPPED + DROP_REASONS.length;

/** The worker's start-up data (structured-cloned; the two buffers are shared). */
export interface BatchWorkerData {
  fds: number[];
  guardPorts: PortRange[];
  limits: RateLimits | undefined;
  sources: number;
  batchSize: number;
  /** Report each dropped datagram (debug logging), at most this many per report; undefined: only count them. */
  dropReportLimit: number | undefined;
  /** Float64Array slots, see COUNTER. */
  counters: SharedArrayBuffer;
  /** Int32Array: [0] = 1 asks the worker to stop. */
  control: SharedArrayBuffer;
}

/** Messages from the worker. */
export type WorkerReport =
  | { type: 'ready' }
  | ({ type: 'drops' } & DropReportData)
  | { type: 'errors'; counts: [code: string, count: number][]; last: { code: string; message: string } | undefined };
