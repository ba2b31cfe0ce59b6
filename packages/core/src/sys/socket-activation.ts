/**
 * Socket activation: listening on a socket the process was given (`fd:N`, `systemd:NAME`) instead of one it binds.
 * systemd (or `systemd-socket-activate`, or any supervisor that follows sd_listen_fds(3)) binds the port, which may
 * be privileged, and starts the service with the sockets as descriptors 3, 4, ... and three variables:
 * `LISTEN_PID` (the process they are meant for), `LISTEN_FDS` (how many) and `LISTEN_FDNAMES` (colon-separated
 * names, `FileDescriptorName=` of the socket unit). Like sd_listen_fds(3) with unset_environment true, they are read
 * once, checked against our pid, and removed from the environment so that a child process does not take them for its
 * own; the descriptors get FD_CLOEXEC for the same reason.
 */
import { fstatSync } from 'node:fs';
import { SocketActivationError } from '../errors.js';
import { type ActivatedEndpoint, formatListenEndpoint } from '../net/endpoint.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  getIntOption,
  loadLibc,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_TYPE,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
} from './sockopt.js';

/** sd_listen_fds(3): the first passed descriptor is 3 (SD_LISTEN_FDS_START). */
export const SD_LISTEN_FDS_START = 3;

// <sys/socket.h> on Linux; <fcntl.h>.
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/** One descriptor passed by socket activation, with its name (`unknown` when LISTEN_FDNAMES is unset, as systemd). */
export interface ListenFd {
  fd: number;
  name: string;
}

/** What the environment said, read once: the descriptors, or why there are none. */
let passed: { fds: ListenFd[] } | { none: string } | undefined;

/**
 * The descriptors passed by socket activation (sd_listen_fds_with_names(3)): read from LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES on the first call, which removes the three variables from `env`; later calls return the same
 * answer. Empty when the process was not socket-activated, or when LISTEN_PID names another process (the variables
 * leaked from a parent that was activated itself).
 */
export function listenFds(env: NodeJS.ProcessEnv = process.env): readonly ListenFd[] {
  const state = readPassed(env);
  return 'fds' in state ? state.fds : [];
}

function readPassed(env: NodeJS.ProcessEnv): { fds: ListenFd[] } | { none: string } {
  if (passed !== undefined) return passed;
  const pid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (count === undefined || pid === undefined) {
    passed = { none: 'this process was not started by socket activation (LISTEN_FDS and LISTEN_PID are not set)' };
  } else if (pid !== String(process.pid)) {
    passed = {
      none: `LISTEN_PID is ${pid} but this process is ${process.pid}: the sockets were passed to another one`,
    };
  } else if (!/^\d{1,4}$/.test(count)) {
    passed = { none: `LISTEN_FDS "${count}" is not a descriptor count` };
  } else {
    const nameList = names === undefined ? [] : names.split(':');
    const fds: ListenFd[] = [];
    for (let i = 0; i < Number(count); i++) {
      const fd = SD_LISTEN_FDS_START + i;
      fds.push({ fd, name: nameList[i] || 'unknown' });
      setCloseOnExec(fd);
    }
    passed = { fds };
  }
  return passed;
}

/** Forgets what {@link listenFds} read, so a test can present another environment. */
export function resetListenFdsForTests(): void {
  passed = undefined;
}

/** The socket behind an activated endpoint, checked to fit the service's transport. */
export interface ActivatedSocket {
  fd: number;
  /** 4 or 6 for an IP socket, `unix` for a Unix one. */
  family: 4 | 6 | 'unix';
}

/**
 * The descriptor an `fd:` or `systemd:` endpoint stands for, checked to be an open socket of `transport` (a
 * listening one for TCP: sockets passed with systemd's Accept=yes, or inetd's `nowait`, are connections, which these
 * services do not take).
 *
 * @throws {SocketActivationError} `NET_ERR_SOCKET_ACTIVATION` naming the endpoint and what is wrong.
 */
export function activatedSocket(
  endpoint: ActivatedEndpoint,
  transport: 'tcp' | 'udp',
  env: NodeJS.ProcessEnv = process.env,
): ActivatedSocket {
  const label = formatListenEndpoint(endpoint);
  let fd: number;
  if (endpoint.kind === 'fd') {
    fd = endpoint.fd;
    // Read (and unset) the variables even when the number is given: a child must not inherit them either.
    readPassed(env);
  } else {
    const state = readPassed(env);
    if ('none' in state) throw new SocketActivationError(label, `${state.none}; start it from a .socket unit`);
    const found = state.fds.find((f) => f.name === endpoint.name);
    if (found === undefined) {
      const known = state.fds.map((f) => `${f.name} (fd ${f.fd})`).join(', ') || 'none';
      throw new SocketActivationError(
        label,
        `no socket named "${endpoint.name}" was passed (LISTEN_FDNAMES: ${known}); set FileDescriptorName= in the .socket unit`,
      );
    }
    fd = found.fd;
  }
  checkSocket(label, fd, transport);
  return { fd, family: familyOf(label, fd) };
}

function checkSocket(label: string, fd: number, transport: 'tcp' | 'udp'): void {
  let isSocket: boolean;
  try {
    // bigint: Node 20's fstatSync leaves the socket's mode in the stat array that fs.realpathSync shares, and the
    // next require() then stops resolving symlinks at a cached directory (koffi, loaded just after for SO_TYPE,
    // was then not found under pnpm's layout). The bigint variant fills a separate array. Not seen on Node 24.21.
    isSocket = fstatSync(fd, { bigint: true }).isSocket();
  } catch (err) {
    throw new SocketActivationError(label, `descriptor ${fd} is not open in this process`, { cause: err });
  }
  if (!isSocket) throw new SocketActivationError(label, `descriptor ${fd} is not a socket`);
  const type = intOption(fd, SO_TYPE, 'SO_TYPE');
  if (type === undefined) return; // No libc access (not Linux, no koffi): Node's own checks remain.
  const want = transport === 'tcp' ? SOCK_STREAM : SOCK_DGRAM;
  if (type !== want) {
    const is =
      type === SOCK_STREAM
        ? 'a stream (TCP) socket'
        : type === SOCK_DGRAM
          ? 'a datagram (UDP) socket'
          : `a socket of type ${type}`;
    const unit = transport === 'tcp' ? 'ListenStream=' : 'ListenDatagram=';
    throw new SocketActivationError(
      label,
      `descriptor ${fd} is ${is}, this service needs a ${transport === 'tcp' ? 'stream (TCP)' : 'datagram (UDP)'} socket (${unit} in the .socket unit)`,
    );
  }
  if (transport === 'tcp' && intOption(fd, SO_ACCEPTCONN, 'SO_ACCEPTCONN') === 0) {
    throw new SocketActivationError(
      label,
      `descriptor ${fd} is not listening (a connection passed with Accept=yes or inetd's nowait?); use Accept=no`,
    );
  }
}

function familyOf(label: string, fd: number): 4 | 6 | 'unix' {
  const domain = intOption(fd, SO_DOMAIN, 'SO_DOMAIN');
  if (domain === AF_INET) return 4;
  if (domain === AF_UNIX) return 'unix';
  if (domain === AF_INET6 || domain === undefined) return 6;
  throw new SocketActivationError(label, `descriptor ${fd} is a socket of address family ${domain}, not IP or Unix`);
}

/** An int socket option, or undefined when libc cannot be reached here. */
function intOption(fd: number, name: number, label: string): number | undefined {
  try {
    loadLibc(label);
  } catch {
    return undefined;
  }
  return getIntOption(fd, SOL_SOCKET, name, label);
}

/** sd_listen_fds(3) sets FD_CLOEXEC on every passed descriptor; best effort (a failure only leaks it to children). */
function setCloseOnExec(fd: number): void {
  try {
    const lib = loadLibc('FD_CLOEXEC');
    lib.fcntl(fd, F_SETFD, 'int', FD_CLOEXEC);
  } catch {}
}
