/**
 * Socket options Node does not expose, set and read through libc with koffi (a prebuilt N-API FFI: one binary serves
 * Node 20, 24 and 26, no compiler on the target). Linux only: the constants below are Linux's (x86, arm, riscv; not
 * MIPS/alpha, whose SOCK_* flags differ). koffi is loaded on first use, so a service that never sets an option never
 * loads it, and a platform without it fails with SocketOptionUnsupportedError only when an option is asked for.
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import type Koffi from 'koffi';
import { SocketOptionError, SocketOptionUnsupportedError } from '../errors.js';
import { systemError } from './errno.js';

// <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h> on Linux.
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
/** The socket's pending error (socket(7)); reading it clears it. */
export const SO_ERROR = 4;
export const SO_ACCEPTCONN = 30;
export const SO_DOMAIN = 39;
export const SO_KEEPALIVE = 9;
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const TCP_USER_TIMEOUT = 18;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

/** The libc functions we call; every one returns -1 and sets errno on failure. */
interface Libc {
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Buffer): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  listen(fd: number, backlog: number): number;
  close(fd: number): number;
  inet_pton(family: number, source: string, destination: Buffer): number;
  if_nametoindex(name: string): number;
  /** getrlimit(resource, struct rlimit *): two rlim_t (64-bit on every Linux ABI we support). */
  getrlimit(resource: number, limits: Buffer): number;
  /** fcntl(fd, cmd, ...): variadic, so each extra argument is passed as a type name and a value (koffi). */
  fcntl(fd: number, cmd: number, ...typedArgs: unknown[]): number;
  errno(): number;
}

/** koffi and libc as Node already linked it, opened once. */
interface OpenLibc {
  koffi: typeof Koffi;
  lib: ReturnType<(typeof Koffi)['load']>;
}

let opened: OpenLibc | undefined;
let unavailable: Error | undefined;

/**
 * Opens koffi and libc once, for every module that calls libc (socket options here, batched datagram I/O in
 * datagram-batch.ts); throws an Error saying why that cannot work here, which each caller wraps in its own coded error.
 */
export function openLibc(): OpenLibc {
  if (opened) return opened;
  if (unavailable) throw unavailable;
  if (process.platform !== 'linux') {
    unavailable = new Error(`needs Linux, this is ${process.platform}`);
    throw unavailable;
  }
  try {
    // createRequire keeps the load lazy and synchronous (setsockopt callers are synchronous).
    const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
    // load(null) is dlopen(NULL): libc's symbols as Node already linked them, glibc or musl alike.
    opened = { koffi, lib: koffi.load(null) };
    return opened;
  } catch (error) {
    unavailable = new Error(
      `cannot load koffi (${(error as Error).message}); is the koffi package and its prebuilt binary for ${process.platform}-${process.arch} installed?`,
      { cause: error },
    );
    throw unavailable;
  }
}

let libc: Libc | undefined;

/** Binds the libc functions once; throws SocketOptionUnsupportedError (naming `option`) where that cannot work. */
export function loadLibc(option: string): Libc {
  if (libc) return libc;
  let koffi: OpenLibc['koffi'];
  let lib: OpenLibc['lib'];
  try {
    ({ koffi, lib } = openLibc());
  } catch (error) {
    throw new SocketOptionUnsupportedError(option, (error as Error).message, { cause: error });
  }
  libc = {
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)'),
    // Both pointers take Buffers, written in place: no per-call allocation by koffi.
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *length)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const void *address, uint32_t length)'),
    listen: lib.func('int listen(int fd, int backlog)'),
    close: lib.func('int close(int fd)'),
    inet_pton: lib.func('int inet_pton(int family, const char *source, void *destination)'),
    if_nametoindex: lib.func('uint32_t if_nametoindex(const char *name)'),
    getrlimit: lib.func('int getrlimit(int resource, void *limits)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** The Node-style error (`code` 'EBADF', `errno` -9, `syscall`) for the errno the last libc call left. */
export function errnoError(lib: Libc, syscall: string): NodeJS.ErrnoException {
  return systemError(lib.errno(), syscall);
}

/** Anything with a libuv handle: a connected or accepted socket, or a listening server. */
export type SocketLike = net.Socket | net.Server;

/**
 * The file descriptor behind a socket or a listening server. libuv creates it on connect/listen: before that
 * `_handle` is null or its `fd` is -1, so options go in the 'connect', 'connection' or 'listening' event.
 */
export function getSocketFd(target: SocketLike, option = 'socket'): number {
  const handle = (target as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new SocketOptionError(
      option,
      handle
        ? `the socket has no file descriptor yet (fd ${String(fd)}): set options in the 'connect', 'connection' or 'listening' event`
        : `the socket has no handle (not connected yet, or already closed): set options in the 'connect', 'connection' or 'listening' event`,
    );
  }
  return fd;
}

// One scratch pair for every call: calls are synchronous, so they never overlap.
const valueScratch = Buffer.alloc(4);
const lengthScratch = Buffer.alloc(4);

/** setsockopt(fd, level, name, &int, 4); throws SocketOptionError naming `option` and the errno code. */
export function setIntOption(fd: number, level: number, name: number, value: number, option: string): void {
  const lib = loadLibc(option);
  valueScratch.writeInt32LE(value);
  if (lib.setsockopt(fd, level, name, valueScratch, 4) !== 0) {
    const cause = errnoError(lib, 'setsockopt');
    throw new SocketOptionError(option, `setsockopt(fd ${fd}, ${value}) failed: ${cause.code}`, { cause });
  }
}

/** getsockopt(fd, level, name) of an int option; throws SocketOptionError naming `option` and the errno code. */
export function getIntOption(fd: number, level: number, name: number, option: string): number {
  const lib = loadLibc(option);
  valueScratch.writeInt32LE(0);
  lengthScratch.writeUInt32LE(4);
  if (lib.getsockopt(fd, level, name, valueScratch, lengthScratch) !== 0) {
    const cause = errnoError(lib, 'getsockopt');
    throw new SocketOptionError(option, `getsockopt(fd ${fd}) failed: ${cause.code}`, { cause });
  }
  return valueScratch.readInt32LE();
}

/** Reads an int socket option, e.g. `readSocketOption(server, SOL_SOCKET, SO_REUSEPORT)`; for tests and checks. */
export function readSocketOption(fdOrSocket: number | SocketLike, level: number, name: number): number {
  const option = `option ${level}/${name}`;
  const fd = typeof fdOrSocket === 'number' ? fdOrSocket : getSocketFd(fdOrSocket, option);
  return getIntOption(fd, level, name, option);
}
