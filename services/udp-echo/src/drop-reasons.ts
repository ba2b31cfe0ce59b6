/**
 * Why a datagram is dropped unanswered: the one list behind the `reason` label of `net_datagrams_dropped_total`,
 * the rate limiter's refusing verdicts (rate-limiter.ts), and the slot of each reason in every engine's drop
 * counters (the dgram engine's array, the batch engine's shared memory). A reason's slot is its position here, so
 * adding a reason is one line in this list (then the gate that uses it, and its row in the README).
 */
export const DROP_REASONS = [
  /** The source port is one that may answer back (CVE-1999-0103). */
  'reflection_guard',
  /** The source's datagram bucket is empty. */
  'rate_limit_packets',
  /** The source's byte bucket holds fewer bytes than the datagram. */
  'rate_limit_bytes',
  /** A new source and no slot in the rate limiter's table to give it. */
  'table_full',
  /** No room for the reply: dgram's user-space queue past --max-queued-bytes, or the kernel's send buffer (batch). */
  'send_queue_full',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** `{ reflection_guard: 0, rate_limit_packets: 1, ... }` with each slot's literal type. */
type Slots<T extends readonly string[]> = {
  readonly [I in keyof T & `${number}` as T[I]]: I extends `${infer N extends number}` ? N : never;
};

/** The slot of each reason: its index in DROP_REASONS and in every engine's drop counters. */
export const DROP = Object.freeze(Object.fromEntries(DROP_REASONS.map((reason, slot) => [reason, slot]))) as Slots<
  typeof DROP_REASONS
>;
export type DropSlot = (typeof DROP)[DropReason];
