/**
 * The batch engine's worker thread (batch-echo.ts starts it): the echo loop over recvmmsg/sendmmsg.
 *
 *   wait for a datagram -> receive up to a batch -> gate each one -> send the passed ones back in one call
 *
 * The gates are those of the dgram engine (datagram-echo.ts), in the same order: the reflection guard, then the per-source
 * rate limiter. There is no user-space send queue here: a reply the kernel's send buffer has no room for is
 * dropped at once and counted as `send_queue_full`. The counters live in shared memory the main thread reads at
 * scrape time; socket errors are sent to it at most every half second, summed by code; at debug level each dropped
 * datagram is sent too (bounded per report, drop-report.ts), at most every 100 ms, for the main thread to log.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { DatagramBatch, DatagramBatchError, type PortRange, ReflectionGuard } from '@net/core';
import { type BatchWorkerData, COUNTER, type WorkerReport } from './batch-protocol.js';
import { DROP, type DropSlot } from './drop-reasons.js';
import { DropReport } from './drop-report.js';
import { RateLimiter, VERDICT } from './rate-limiter.js';

/** How long one wait for traffic lasts: the bound on noticing a stop request when no datagram arrives. */
const WAIT_MS = 50;
const ERROR_REPORT_MS = 500;
/** How often dropped datagrams are reported one by one (debug logging only): a log line's delay at most. */
const DROP_REPORT_MS = 100;

const data = workerData as BatchWorkerData;
const counters = new Float64Array(data.counters);
const control = new Int32Array(data.control);
const guard = new ReflectionGuard(data.guardPorts as PortRange[]);
const limiter = data.limits === undefined ? undefined : new RateLimiter(data.limits, data.sources);
const batch = new DatagramBatch(data.batchSize);
const fds = data.fds;
/** Which datagram of the batch each queued reply is (to report the ones the send buffer had no room for). */
const replied = new Int32Array(data.batchSize);
const dropReport = data.dropReportLimit === undefined ? undefined : new DropReport(data.dropReportLimit);
let dropsReportedAt = 0;

const errors = new Map<string, number>();
let lastError: { code: string; message: string } | undefined;
let errorsChanged = false;
let reportedAt = 0;

function countError(error: unknown): void {
  if (!(error instanceof DatagramBatchError)) throw error;
  errors.set(error.errnoCode, (errors.get(error.errnoCode) ?? 0) + 1);
  lastError = { code: error.errnoCode, message: error.message };
  errorsChanged = true;
}

function reportErrors(): void {
  if (!errorsChanged) return;
  const now = Date.now();
  if (now - reportedAt < ERROR_REPORT_MS) return;
  reportedAt = now;
  errorsChanged = false;
  const report: WorkerReport = { type: 'errors', counts: [...errors], last: lastError };
  parentPort?.postMessage(report);
}

function reportDrops(now: number): void {
  if (dropReport === undefined || now - dropsReportedAt < DROP_REPORT_MS) return;
  const drops = dropReport.take();
  if (drops === undefined) return;
  dropsReportedAt = now;
  const report: WorkerReport = { type: 'drops', ...drops };
  parentPort?.postMessage(report);
}

/** Counts datagram `i` of the batch as dropped for `slot`'s reason (and reports it when logging drops). */
function drop(slot: DropSlot, i: number): void {
  counters[COUNTER.DROPPED + slot]! += 1;
  if (dropReport !== undefined) dropReport.add(slot, batch.address(i), batch.port(i), batch.length(i));
}

/** Gates and answers the `n` datagrams just received on `fd`. */
function echoBatch(fd: number, n: number): void {
  const now = limiter === undefined ? 0 : performance.now();
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const length = batch.length(i);
    bytes += length;
    // CVE-1999-0103: never answer a port that may answer back.
    if (guard.blocks(batch.port(i))) {
      drop(DROP.reflection_guard, i);
      continue;
    }
    if (limiter !== undefined) {
      const verdict = limiter.check(batch.address(i), length, now);
      if (verdict !== VERDICT.PASS) {
        // A refusing verdict is the slot of its drop reason.
        drop(verdict, i);
        continue;
      }
    }
    replied[batch.replyCount] = i;
    batch.reply(i);
  }
  if (limiter !== undefined) counters[COUNTER.SOURCES] = limiter.size;
  counters[COUNTER.RECEIVED]! += n;
  counters[COUNTER.RECEIVED_BYTES]! += bytes;
  const total = batch.replyCount;
  let from = 0;
  while (from < total) {
    let sent: number;
    try {
      sent = batch.send(fd, from);
    } catch (error) {
      // The kernel refused this one destination (a firewall's EPERM, say): count it and go on with the rest.
      countError(error);
      from++;
      continue;
    }
    if (sent === 0) {
      for (let k = from; k < total; k++) drop(DROP.send_queue_full, replied[k]!);
      break;
    }
    counters[COUNTER.SENT]! += sent;
    counters[COUNTER.SENT_BYTES]! += batch.replyBytes(from, from + sent);
    from += sent;
  }
}

function loop(): void {
  while (Atomics.load(control, 0) === 0) {
    let busy = false;
    for (const fd of fds) {
      let n = 0;
      try {
        n = batch.receive(fd);
      } catch (error) {
        countError(error);
      }
      if (n > 0) {
        busy = true;
        echoBatch(fd, n);
      }
    }
    if (!busy) {
      try {
        batch.wait(fds, WAIT_MS);
      } catch (error) {
        countError(error);
        Atomics.wait(control, 0, 0, WAIT_MS); // never spin on a failing poll
      }
    }
    reportErrors();
    if (dropReport !== undefined) reportDrops(performance.now());
  }
  reportedAt = 0;
  reportErrors();
  dropsReportedAt = Number.NEGATIVE_INFINITY;
  reportDrops(0);
}

const ready: WorkerReport = { type: 'ready' };
parentPort?.postMessage(ready);
loop();
