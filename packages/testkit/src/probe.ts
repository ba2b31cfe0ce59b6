/**
 * The one protocol-specific piece of the service contract: a probe proves the service answers, and, with
 * `holdOpen`, leaves work in flight that the drain rule completes after the signal.
 */

/** Where the probe connects: the loopback address and the port of the ready line. */
export interface ProbeEndpoint {
  host: string;
  port: number;
}

/** Options of a {@link Probe}. */
export interface ProbeOptions {
  /**
   * Leave work in flight and return a {@link HeldWork}: e.g. an echo probe sends bytes and keeps the connection
   * open; a keepalive probe holds its connection. The drain rule signals the service, then calls `finish()`.
   */
  holdOpen?: boolean;
}

/** Work a probe left in flight. */
export interface HeldWork {
  /**
   * Completes the work after the service was signalled and must resolve: e.g. half-close and read back every
   * byte sent before the signal. Rejects (or throws an assertion) when the service dropped or cut it.
   */
  finish(): Promise<void>;
  /** Releases the work without checking anything (the drain-period test, cleanup); must not throw. */
  close(): void;
}

/**
 * Proves the service answers at `endpoint` (resolves) or fails (rejects). With `{ holdOpen: true }` it must
 * resolve with a {@link HeldWork} once the service has provably received the work (e.g. after the first echo came
 * back), so that the signal the drain rule sends next finds it in flight.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a probe without holdOpen returns nothing; void lets it omit `return`.
export type Probe = (endpoint: ProbeEndpoint, options?: ProbeOptions) => Promise<HeldWork | void>;
