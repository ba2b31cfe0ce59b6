/**
 * Per-source token buckets (datagrams/s and bytes/s, each with a burst) in a table of fixed capacity.
 *
 * UDP sources cost nothing to forge, so the table must stay bounded however many addresses are seen. Everything is
 * allocated once, at the capacity: the bucket state lives in typed arrays indexed by a slot number, a Map finds a
 * source's slot, and a doubly linked list through the slots keeps them in least-recently-seen order. A new source
 * takes a free slot, or the least recently seen slot if that source has been quiet long enough for both its buckets
 * to be full again (forgetting it then loses nothing: it would start with full buckets anyway). If even the least
 * recently seen source is still active, the table is full of active sources and the new one is refused
 * (`TABLE_FULL`): evicting it would let a flood of forged sources reset the buckets of the sources it is limiting.
 *
 * Memory per entry (bench/source-table-memory.mjs, Node 20 and 24, table full): 101 bytes for IPv4 sources, 109 for
 * IPv4-mapped (dual stack), 125 for full IPv6 addresses: 40 preallocated (three Float64 and two Int32 arrays, one key
 * pointer), the rest the Map entry and the address string dgram allocated, which the table keeps alive.
 */
import { DROP } from './drop-reasons.js';

/** Limits per source; a rate of 0 switches that bucket off. */
export interface RateLimits {
  /** Datagrams per second refilled into the packet bucket (0: no packet limit). */
  packetsPerSecond: number;
  /** Capacity of the packet bucket: datagrams a quiet source may send at once. */
  packetBurst: number;
  /** Bytes per second refilled into the byte bucket (0: no byte limit). */
  bytesPerSecond: number;
  /** Capacity of the byte bucket. */
  byteBurst: number;
}

/**
 * What {@link RateLimiter.check} decided; plain numbers so the hot path compares integers. A refusal is the slot of
 * its drop reason (drop-reasons.ts), so an engine counts it without a mapping of its own.
 */
export const VERDICT = {
  /** Answer it (not a drop reason: no slot). */
  PASS: -1,
  /** The source's datagram bucket is empty. */
  RATE_LIMIT_PACKETS: DROP.rate_limit_packets,
  /** The source's byte bucket holds fewer bytes than the datagram. */
  RATE_LIMIT_BYTES: DROP.rate_limit_bytes,
  /** A new source and no slot to give it (every slot holds a source active within the refill time). */
  TABLE_FULL: DROP.table_full,
} as const;
export type Verdict = (typeof VERDICT)[keyof typeof VERDICT];

const NONE = -1;

/** Token buckets for at most `capacity` sources, least recently seen evicted first when lossless. */
export class RateLimiter {
  readonly capacity: number;
  readonly #limits: RateLimits;
  /** Milliseconds after which an untouched source's buckets are both full: from then on it can be forgotten. */
  readonly #refillMs: number;
  readonly #slotOf = new Map<string, number>();
  readonly #keys: (string | undefined)[];
  readonly #packets: Float64Array;
  readonly #bytes: Float64Array;
  readonly #seenAt: Float64Array;
  readonly #newer: Int32Array;
  readonly #older: Int32Array;
  #newest = NONE;
  #oldest = NONE;
  #used = 0;

  constructor(limits: RateLimits, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#limits = { ...limits };
    const packetRefill = limits.packetsPerSecond > 0 ? limits.packetBurst / limits.packetsPerSecond : 0;
    const byteRefill = limits.bytesPerSecond > 0 ? limits.byteBurst / limits.bytesPerSecond : 0;
    this.#refillMs = Math.max(packetRefill, byteRefill) * 1000;
    this.#keys = new Array<string | undefined>(capacity).fill(undefined);
    this.#packets = new Float64Array(capacity);
    this.#bytes = new Float64Array(capacity);
    this.#seenAt = new Float64Array(capacity);
    this.#newer = new Int32Array(capacity).fill(NONE);
    this.#older = new Int32Array(capacity).fill(NONE);
  }

  /** Sources currently tracked (never more than `capacity`). */
  get size(): number {
    return this.#used;
  }

  /**
   * Charges one datagram of `bytes` to `source` at time `nowMs` (a monotonic clock, e.g. `performance.now()`).
   * Dropped datagrams take no tokens, so a source that stays under its limit on average is never starved by the
   * datagrams it had refused.
   */
  check(source: string, bytes: number, nowMs: number): Verdict {
    let slot = this.#slotOf.get(source);
    if (slot === undefined) {
      slot = this.#claimSlot(source, nowMs);
      if (slot === NONE) return VERDICT.TABLE_FULL;
    } else {
      this.#refill(slot, nowMs);
      this.#touch(slot);
    }
    const l = this.#limits;
    if (l.packetsPerSecond > 0 && this.#packets[slot]! < 1) return VERDICT.RATE_LIMIT_PACKETS;
    if (l.bytesPerSecond > 0 && this.#bytes[slot]! < bytes) return VERDICT.RATE_LIMIT_BYTES;
    this.#packets[slot]! -= 1;
    this.#bytes[slot]! -= bytes;
    return VERDICT.PASS;
  }

  #refill(slot: number, nowMs: number): void {
    const l = this.#limits;
    const elapsed = (nowMs - this.#seenAt[slot]!) / 1000;
    this.#seenAt[slot] = nowMs;
    if (elapsed <= 0) return;
    this.#packets[slot] = Math.min(l.packetBurst, this.#packets[slot]! + elapsed * l.packetsPerSecond);
    this.#bytes[slot] = Math.min(l.byteBurst, this.#bytes[slot]! + elapsed * l.bytesPerSecond);
  }

  /** A slot for a new source with full buckets, or NONE when every slot holds an active source. */
  #claimSlot(source: string, nowMs: number): number {
    let slot: number;
    if (this.#used < this.capacity) {
      slot = this.#used++;
    } else {
      slot = this.#oldest;
      if (nowMs - this.#seenAt[slot]! < this.#refillMs) return NONE;
      this.#slotOf.delete(this.#keys[slot]!);
      this.#unlink(slot);
    }
    this.#keys[slot] = source;
    this.#slotOf.set(source, slot);
    this.#packets[slot] = this.#limits.packetBurst;
    this.#bytes[slot] = this.#limits.byteBurst;
    this.#seenAt[slot] = nowMs;
    this.#pushNewest(slot);
    return slot;
  }

  #touch(slot: number): void {
    if (slot === this.#newest) return;
    this.#unlink(slot);
    this.#pushNewest(slot);
  }

  #unlink(slot: number): void {
    const newer = this.#newer[slot]!;
    const older = this.#older[slot]!;
    if (newer === NONE) this.#newest = older;
    else this.#older[newer] = older;
    if (older === NONE) this.#oldest = newer;
    else this.#newer[older] = newer;
    this.#newer[slot] = NONE;
    this.#older[slot] = NONE;
  }

  #pushNewest(slot: number): void {
    this.#older[slot] = this.#newest;
    this.#newer[slot] = NONE;
    if (this.#newest !== NONE) this.#newer[this.#newest] = slot;
    this.#newest = slot;
    if (this.#oldest === NONE) this.#oldest = slot;
  }
}
