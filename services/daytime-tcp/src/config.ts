/**
 * The settings of `daytime-tcp serve` and `daytime-tcp client`. The common ones (--host, --port, --listen,
 * --admin-port, logging, --drain-timeout) come from @net/core; these are the daytime-specific ones.
 */
import {
  boolean,
  DEFAULT_GUARDED_PORT_RANGES,
  decimal,
  integer,
  oneOf,
  option,
  portSetType,
  tcpLimitOptions,
} from '@net/core';
import { DAYTIME_FORMATS } from './format.js';

/**
 * Port 13 is the daytime port (RFC 867) but binding below 1024 needs privilege on Linux (ip(7)), so a local run
 * uses 1313; the container image sets DAYTIME_TCP_PORT=13.
 */
export const DEFAULT_PORT = 1313;

/** The daytime port of RFC 867 (the container image serves it); `client` defaults to the local server's 1313. */
export const DAYTIME_PORT = 13;

const { maxConnections } = tcpLimitOptions({ maxConnections: 4096, idleTimeout: 0 });

/** Settings of `serve`. */
export const serveOptions = {
  format: option({
    type: oneOf(DAYTIME_FORMATS),
    default: 'ctime',
    description: 'Line format: ctime (the classic C server\'s, "Tue Nov 24 16:07:32 2026"), rfc3339 or rfc2822',
  }),
  utc: option({
    type: boolean(),
    default: false,
    description: 'Write UTC instead of the local time of the process (which honours TZ)',
  }),
  backlog: option({
    type: integer(1, 65_535),
    default: 10,
    description:
      'Length of the kernel accept queue, listen(2) backlog, 10 as in the classic C server (capped by net.core.somaxconn)',
  }),
  maxConnections,
  maxPending: option({
    type: integer(1, 1_000_000),
    default: 1024,
    description:
      'Accepted connections waiting for their turn at most; past it new connections are closed at once and counted',
  }),
  writeTimeout: option({
    type: decimal(0.001, 60, 'seconds'),
    default: 1,
    description:
      'Longest one answer may take to be handed to the kernel; past it the connection is destroyed and the next one served',
  }),
  closeTimeout: option({
    type: decimal(0.001, 3600, 'seconds'),
    default: 2,
    description:
      'After the answer, how long the client may take to close (its input is read and discarded) before the connection is destroyed',
  }),
  io: option({
    type: oneOf(['auto', 'stream'] as const),
    default: 'auto',
    description:
      'How TCP connections are answered: auto (on the accepted libuv handle through Node internals, without a net.Socket each; net.Socket where this Node lacks them), stream (a net.Socket each)',
  }),
  udp: option({
    type: boolean(),
    default: false,
    description: 'Also answer RFC 867 over UDP on the same endpoints (one datagram in, one date out)',
  }),
  udpGuardPorts: option({
    // Core's list (the same as udp-echo's --guard-ports): services that answer unsolicited datagrams, whose source
    // port would start a packet loop (CVE-1999-0103, echo <-> chargen) or reflect traffic towards a victim.
    type: portSetType,
    default: DEFAULT_GUARDED_PORT_RANGES,
    description:
      'UDP source ports never answered (reflection guard, CVE-1999-0103); `--udp-guard-ports=` (empty) turns the guard off',
  }),
  udpRate: option({
    type: integer(0, 10_000_000),
    default: 1000,
    description:
      'UDP answers per second at most, all sources together (0: unlimited); bounds what the service can reflect',
  }),
};

/** Settings of `client`; the runtime names their variables DAYTIME_TCP_CLIENT_* and adds --json. */
export const clientOptions = {
  timeout: option({
    type: decimal(0.001, 3600, 'seconds'),
    default: 5,
    description: 'Deadline for the whole exchange: name resolution, connect and reading the answer to its end',
  }),
  maxBytes: option({
    type: integer(1, 1 << 20),
    default: 1024,
    description: 'Longest answer accepted, in bytes; a longer one is a wrong answer (exit 1)',
  }),
  family: option({
    type: oneOf(['any', '4', '6'] as const),
    default: 'any',
    description: 'Address family to connect over: any (both, Happy Eyeballs RFC 8305), 4 or 6',
  }),
};
