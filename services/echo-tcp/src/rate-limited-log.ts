/**
 * A warning that may be due thousands of times a second (every refused connection when a limit is hit, every
 * failed accept while descriptors are exhausted) is logged at most once per interval, with the count of hits it
 * stands for. Logging each hit would turn an overload into a logging storm.
 */
import type { Logger } from '@net/core';

/** Logs the first hit at once, then at most one line per interval carrying the number of hits since the last. */
export class RateLimitedWarning {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #message: string;
  #last = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  constructor(log: Logger, message: string, intervalMs = 10_000) {
    this.#log = log;
    this.#message = message;
    this.#intervalMs = intervalMs;
  }

  /**
   * Records one hit; `fields` of the hit that gets logged are included (a function: called only for a hit that is
   * logged, so that a suppressed one formats nothing).
   */
  hit(fields: Record<string, unknown> | (() => Record<string, unknown>) = {}): void {
    const now = performance.now();
    if (now - this.#last < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    if (typeof fields === 'function') fields = fields();
    this.#log.warn({ ...fields, hits: this.#suppressed + 1, intervalSeconds: this.#intervalMs / 1000 }, this.#message);
    this.#last = now;
    this.#suppressed = 0;
  }
}
