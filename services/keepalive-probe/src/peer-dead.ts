/**
 * The `peer dead` event: the kernel gave up on a peer (ETIMEDOUT after unanswered keepalive probes, or
 * TCP_USER_TIMEOUT). Every death is counted in `net_peers_dead_total`; each is logged at warn, but at most
 * {@link PEER_DEAD_LOG_BURST} lines a second: when a switch dies, thousands of connections die in the same tick, and
 * thousands of identical lines would bury everything else. The rest are summed into one line per second.
 */
import type { Logger, Metrics } from '@net/core';
import type { AppliedSettings } from './settings.js';

/** Individual `peer dead` lines per second before they are summarised. */
export const PEER_DEAD_LOG_BURST = 100;

/** What is known about a connection when its peer is found dead. */
export interface DeadPeer {
  /** `address:port` of the peer (a watch target's name for `watch`). */
  peer: string;
  /** performance.now() when the connection was established. */
  openedAt: number;
  /** performance.now() of the last byte received from or sent to the peer. */
  lastByteAt: number;
  /** The error the socket reported (ETIMEDOUT). */
  err: NodeJS.ErrnoException;
}

/** Counts and logs dead peers, rate-limited. */
export class PeerDeadReporter {
  readonly #log: Logger;
  readonly #counter: ReturnType<Metrics['counter']>;
  readonly #settings: AppliedSettings;
  #windowStart = 0;
  #loggedInWindow = 0;
  #suppressed = 0;
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(log: Logger, metrics: Metrics, settings: AppliedSettings) {
    this.#log = log;
    this.#counter = metrics.counter('net_peers_dead_total');
    this.#settings = settings;
  }

  /** Records one dead peer: counts it, logs it at warn unless this second's burst is spent. */
  report(dead: DeadPeer, now = performance.now()): void {
    this.#counter.inc();
    if (now - this.#windowStart >= 1000) {
      this.#flush();
      this.#windowStart = now;
      this.#loggedInWindow = 0;
    }
    if (this.#loggedInWindow >= PEER_DEAD_LOG_BURST) {
      this.#suppressed++;
      // One summary line after the window, even if no later death comes to flush it.
      this.#flushTimer ??= setTimeout(() => this.#flush(), 1000).unref();
      return;
    }
    this.#loggedInWindow++;
    const ageSeconds = round((now - dead.openedAt) / 1000);
    const sinceLastByteSeconds = round((now - dead.lastByteAt) / 1000);
    this.#log.warn(
      {
        event: 'peer_dead',
        peer: dead.peer,
        code: dead.err.code,
        ageSeconds,
        sinceLastByteSeconds,
        keepalive: this.#settings.keepalive,
        userTimeoutMs: this.#settings.userTimeoutMs,
      },
      `peer dead: ${dead.peer} stopped answering (${dead.err.code}), ${sinceLastByteSeconds} s after its last byte`,
    );
  }

  /** Logs the summary of suppressed events, if any; call on shutdown too. */
  flush(): void {
    this.#flush();
  }

  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#suppressed === 0) return;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#log.warn(
      { event: 'peer_dead_suppressed', suppressed },
      `peer dead: ${suppressed} more peers dead in the last second (over ${PEER_DEAD_LOG_BURST} a second: counted in net_peers_dead_total, not logged one by one)`,
    );
  }
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/** True for the errors by which the kernel reports a peer that stopped answering (tcp(7): ETIMEDOUT). */
export function isPeerDeadError(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ETIMEDOUT';
}
