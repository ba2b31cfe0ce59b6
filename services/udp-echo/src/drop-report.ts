/**
 * The batch engine's dropped datagrams, one by one, on their way from the worker to the main thread's debug log
 * (the dgram engine logs each drop where it happens). Only collected when the log level is debug.
 *
 * Bounded: a flood of dropped datagrams must not become an unbounded queue of messages between threads. Past
 * `limit` drops in one report, the rest are only counted by reason, and the main thread logs that count instead.
 */
import { DROP_REASONS, type DropSlot } from './drop-reasons.js';

/** One dropped datagram: its reason's slot, source address and port, payload size. */
export type DroppedDatagram = [slot: DropSlot, address: string, port: number, size: number];

/** One report's worth of drops (structured-cloned to the main thread). */
export interface DropReportData {
  drops: DroppedDatagram[];
  /** Drops past the limit, by reason slot. */
  notListed: number[];
}

export class DropReport {
  readonly limit: number;
  #drops: DroppedDatagram[] = [];
  #notListed = new Array<number>(DROP_REASONS.length).fill(0);
  #empty = true;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be an integer >= 0, got ${limit}`);
    this.limit = limit;
  }

  add(slot: DropSlot, address: string, port: number, size: number): void {
    this.#empty = false;
    if (this.#drops.length < this.limit) this.#drops.push([slot, address, port, size]);
    else this.#notListed[slot]! += 1;
  }

  /** The drops since the last take, or undefined when there were none. */
  take(): DropReportData | undefined {
    if (this.#empty) return undefined;
    const data = { drops: this.#drops, notListed: this.#notListed };
    this.#drops = [];
    this.#notListed = new Array<number>(DROP_REASONS.length).fill(0);
    this.#empty = true;
    return data;
  }
}
