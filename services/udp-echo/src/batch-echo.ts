/**
 * The batch engine: the echo on a worker thread that moves up to a batch of datagrams per system call
 * (recvmmsg/sendmmsg, @net/core DatagramBatch), where the dgram engine (datagram-echo.ts) makes two system calls, one
 * callback and one Buffer per datagram. Same gates, same counters, same drain; measured in bench/ (README).
 *
 * The sockets are bound by dgram as usual (buffer sizes, SO_REUSEPORT, dual stack: udp-bind.ts); the worker then
 * takes over their descriptors and dgram stops reading them. The main thread keeps the admin endpoint, the logs and
 * the signals, and reads the worker's counters from shared memory at scrape time.
 *
 * Dropped datagrams reach `onDrop` too, when one is given (debug logging): the worker sends them at most every
 * 100 ms, up to DROP_REPORT_LIMIT per report; past that, `onDropsNotListed` gets their count by reason.
 *
 * What it does not do: queue replies in user space (a full send buffer drops at once, `send_queue_full`).
 */
import type dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { datagramBatchSupport, datagramSocketFd, type PortRange, takeOverDatagramSocket } from '@net/core';
import { type BatchWorkerData, COUNTER, COUNTER_SLOTS, type WorkerReport } from './batch-protocol.js';
import { closeSockets, type DropListener, type EchoEngine, untilQuiet } from './datagram-echo.js';
import { DROP_REASONS, type DropReason } from './drop-reasons.js';
import type { DropReportData } from './drop-report.js';
import type { RateLimits } from './rate-limiter.js';

/** Datagrams moved per system call at most: the C reference's batch (bench/c/echo-udp-ref.c). */
const BATCH_SIZE = 64;
/**
 * Dropped datagrams listed one by one per report (every 100 ms at most) when `onDrop` is given: up to 10,000 debug
 * lines a second, a bound on what a flood can push through the thread's message queue and the log.
 */
export const DROP_REPORT_LIMIT = 1000;

/** Options of {@link BatchEcho}. */
export interface BatchEchoOptions {
  /** Every guarded source port, the listening ports included. */
  guardPorts: () => PortRange[];
  /** Undefined when both rate limits are off. */
  limits: RateLimits | undefined;
  sources: number;
  /** Called with the last socket error of each report (at most every half second). */
  onError?: (err: NodeJS.ErrnoException) => void;
  /** Called for each dropped datagram, up to DROP_REPORT_LIMIT per report; only given at debug level. */
  onDrop?: DropListener | undefined;
  /** Dropped datagrams listed one by one per report (DROP_REPORT_LIMIT unless given). */
  dropReportLimit?: number;
  /** Called with the drops of one report past the limit, counted by reason (never an empty object). */
  onDropsNotListed?: ((dropped: Partial<Record<DropReason, number>>) => void) | undefined;
}

/** Undefined when the batch engine can run here; else why not. */
export function batchEngineSupport(): string | undefined {
  return datagramBatchSupport();
}

export class BatchEcho implements EchoEngine {
  readonly #counters = new Float64Array(new SharedArrayBuffer(8 * COUNTER_SLOTS));
  readonly dropped = this.#counters.subarray(COUNTER.DROPPED);
  readonly errors = new Map<string, number>();
  readonly #control = new Int32Array(new SharedArrayBuffer(4));
  readonly #options: BatchEchoOptions;
  readonly #sockets: dgram.Socket[] = [];
  #exited: Promise<void> | undefined;

  constructor(options: BatchEchoOptions) {
    this.#options = options;
  }

  get received(): number {
    return this.#counters[COUNTER.RECEIVED] as number;
  }
  get receivedBytes(): number {
    return this.#counters[COUNTER.RECEIVED_BYTES] as number;
  }
  get sent(): number {
    return this.#counters[COUNTER.SENT] as number;
  }
  get sentBytes(): number {
    return this.#counters[COUNTER.SENT_BYTES] as number;
  }
  /** Sources in the worker's rate limiter table. */
  get sources(): number {
    return this.#counters[COUNTER.SOURCES] as number;
  }

  attach(socket: dgram.Socket): void {
    this.#sockets.push(socket);
  }

  /**
   * Starts the worker and hands it the sockets once it is ready; rejects (sockets untouched, still read by dgram)
   * when it cannot start.
   */
  async start(): Promise<void> {
    const unsupported = batchEngineSupport();
    if (unsupported !== undefined) throw new Error(unsupported);
    const fds = this.#sockets.map((socket) => datagramSocketFd(socket));
    const data: BatchWorkerData = {
      fds,
      guardPorts: this.#options.guardPorts(),
      limits: this.#options.limits,
      sources: this.#options.sources,
      batchSize: BATCH_SIZE,
      dropReportLimit:
        this.#options.onDrop === undefined ? undefined : (this.#options.dropReportLimit ?? DROP_REPORT_LIMIT),
      counters: this.#counters.buffer as SharedArrayBuffer,
      control: this.#control.buffer as SharedArrayBuffer,
    };
    const worker = new Worker(new URL('./batch-worker.js', import.meta.url), { workerData: data });

    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      worker.once('error', onError);
      worker.once('exit', (code) => reject(new Error(`the batch worker exited with code ${code} before it started`)));
      worker.on('message', (report: WorkerReport) => {
        if (report.type === 'ready') {
          worker.off('error', onError);
          // Only now does dgram stop reading: until the worker runs, the sockets stay as they were.
          for (const socket of this.#sockets) takeOverDatagramSocket(socket);
          resolve();
        } else if (report.type === 'drops') this.#onDrops(report);
        else this.#onErrors(report);
      });
    });
    // From here a failure of the worker is a bug: the process must not live on without answering.
    worker.on('error', (err) => {
      throw err;
    });
  }

  async drained(quietMs: number): Promise<void> {
    await untilQuiet(() => this.received, quietMs);
    await this.close();
  }

  /** Stops the worker (within its 50 ms wait), then closes the sockets. */
  async close(): Promise<void> {
    Atomics.store(this.#control, 0, 1);
    if (this.#exited !== undefined) await this.#exited;
    await closeSockets(this.#sockets.splice(0));
  }

  #onDrops(report: DropReportData): void {
    const { onDrop, onDropsNotListed } = this.#options;
    if (onDrop !== undefined)
      for (const [slot, address, port, size] of report.drops) onDrop(DROP_REASONS[slot], { address, port }, size);
    const notListed: Partial<Record<DropReason, number>> = {};
    let any = false;
    report.notListed.forEach((count, slot) => {
      if (count > 0) {
        notListed[DROP_REASONS[slot]!] = count;
        any = true;
      }
    });
    if (any) onDropsNotListed?.(notListed);
  }

  #onErrors(report: Extract<WorkerReport, { type: 'errors' }>): void {
    for (const [code, count] of report.counts) this.errors.set(code, count);
    if (report.last !== undefined && this.#options.onError !== undefined) {
      const err = new Error(report.last.message) as NodeJS.ErrnoException;
      err.code = report.last.code;
      this.#options.onError(err);
    }
  }
}
