/**
 * Batched datagram I/O: recvmmsg(2) and sendmmsg(2), which `dgram` does not offer, on a bound dgram socket's
 * descriptor, through koffi (as sockopt.ts).
 *
 * `dgram` makes one recvmsg and one sendmsg system call, one JS callback and one Buffer per datagram. A UDP server
 * under load spends most of its time there: a C server that moves up to 64 datagrams per system call answered
 * 2.6x more 64 B datagrams than `dgram` on these machines (bench). A {@link DatagramBatch} owns native memory for
 * `capacity` datagrams (headers, addresses and 64 KiB of data each, allocated once, touched pages only), receives
 * a batch in one call, lets the caller look at each datagram's source and length, and sends chosen datagrams back
 * to their sources from the same memory: no copy, no allocation per datagram.
 *
 * The calls are non-blocking (MSG_DONTWAIT): a caller with nothing to do waits in {@link DatagramBatch.wait}
 * (poll(2)), which blocks its thread, so batches belong on a worker thread (udp-echo's batch engine).
 *
 * Linux on 64-bit little-endian CPUs only (the struct layouts below); {@link datagramBatchSupport} says why not.
 */
import type dgram from 'node:dgram';
import { DatagramBatchError, DatagramBatchUnsupportedError } from '../errors.js';
import { formatIpv6 } from '../net/ipv6-text.js';
import { errnoName } from '../sys/errno.js';
import { AF_INET, AF_INET6, openLibc } from '../sys/sockopt.js';

/** struct mmsghdr on LP64 Linux: struct msghdr (56 bytes) then unsigned int msg_len, padded to 64. */
const MMSG_SIZE = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_FLAGS = 48;
const MSG_LEN = 56;
const IOVEC_SIZE = 16;
/** Room for a sockaddr_in6 (28 bytes), 8-byte aligned. */
const ADDRESS_SIZE = 32;
/** The largest UDP payload over IPv6 (65,527) fits; IPv4's is 65,507. */
export const DATAGRAM_SLOT_SIZE = 65536;
const POLLFD_SIZE = 8;
const POLLIN = 0x1;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;

interface BatchLibc {
  koffi: ReturnType<typeof openLibc>['koffi'];
  recvmmsg(fd: number, msgs: unknown, vlen: number, flags: number, timeout: null): number;
  sendmmsg(fd: number, msgs: unknown, vlen: number, flags: number): number;
  poll(fds: unknown, count: number, timeoutMs: number): number;
  errno(): number;
}

let libc: BatchLibc | undefined;
let unsupported: string | undefined;

function load(): BatchLibc {
  if (libc) return libc;
  if (unsupported === undefined && process.arch !== 'x64' && process.arch !== 'arm64')
    unsupported = `the struct layouts are written for 64-bit Linux (x64, arm64), this is ${process.arch}`;
  if (unsupported !== undefined) throw new DatagramBatchUnsupportedError(unsupported);
  let opened: ReturnType<typeof openLibc>;
  try {
    opened = openLibc();
  } catch (error) {
    throw new DatagramBatchUnsupportedError((error as Error).message, { cause: error });
  }
  const { koffi, lib } = opened;
  libc = {
    koffi,
    recvmmsg: lib.func('int recvmmsg(int fd, void *msgs, unsigned int vlen, int flags, void *timeout)'),
    sendmmsg: lib.func('int sendmmsg(int fd, void *msgs, unsigned int vlen, int flags)'),
    poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** Undefined when batches work here; else why not (platform, CPU, koffi missing). */
export function datagramBatchSupport(): string | undefined {
  try {
    load();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A failed system call as a {@link DatagramBatchError}, its errno named as Node names it. */
function batchError(syscall: string, errno: number): DatagramBatchError {
  return new DatagramBatchError(syscall, -errno, errnoName(errno));
}

/**
 * The descriptor of a bound `dgram` socket. Reads dgram's internal state (the handle, as `socket._handle` would
 * give it, without that getter's runtime deprecation warning): the same on Node 20, 24 and 26.
 */
export function datagramSocketFd(socket: dgram.Socket): number {
  return datagramHandle(socket).fd as number;
}

/**
 * {@link datagramSocketFd}, with the socket's own reading stopped: from then on only the caller reads it (dgram
 * would otherwise race us for every datagram). The socket stays open; `socket.close()` still closes it.
 */
export function takeOverDatagramSocket(socket: dgram.Socket): number {
  const handle = datagramHandle(socket);
  handle.recvStop();
  return handle.fd as number;
}

function datagramHandle(socket: dgram.Socket): { fd: number; recvStop: () => number } {
  const stateKey = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = stateKey === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[stateKey];
  const handle = (state as { handle?: { fd?: unknown; recvStop?: unknown } | null } | undefined)?.handle;
  if (
    handle === undefined ||
    handle === null ||
    typeof handle.fd !== 'number' ||
    handle.fd < 0 ||
    typeof handle.recvStop !== 'function'
  )
    throw new Error('cannot take over this dgram socket: unbound, closed, or a Node whose dgram internals changed');
  return handle as { fd: number; recvStop: () => number };
}

/** One batch of datagrams in native memory; not thread-safe (one thread uses it). */
export class DatagramBatch {
  readonly capacity: number;
  readonly #lib: BatchLibc;
  /** Receive side: mmsghdr[capacity], iovec[capacity], address[capacity], data[capacity]. */
  readonly #recv: unknown;
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  /** Send side: mmsghdr[capacity], iovec[capacity] pointing into the receive side's addresses and data. */
  readonly #send: unknown;
  readonly #sendView: DataView;
  readonly #poll: unknown;
  readonly #pollView: DataView;
  readonly #iovOffset: number;
  readonly #addressOffset: number;
  readonly #dataOffset: number;
  readonly #recvBase: bigint;
  readonly #sendBase: bigint;
  /** Indexes (into the last receive) of the datagrams queued for sending, and how many. */
  readonly #replies: Int32Array;
  #replyCount = 0;
  #received = 0;

  constructor(capacity = 64) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024)
      throw new RangeError(`batch capacity must be an integer from 1 to 1024, got ${capacity}`);
    const lib = load();
    const { koffi } = lib;
    this.#lib = lib;
    this.capacity = capacity;
    this.#iovOffset = capacity * MMSG_SIZE;
    this.#addressOffset = this.#iovOffset + capacity * IOVEC_SIZE;
    this.#dataOffset = this.#addressOffset + capacity * ADDRESS_SIZE;
    const recvSize = this.#dataOffset + capacity * DATAGRAM_SLOT_SIZE;
    // Native memory (not Buffers): its addresses go into the headers and must never move. Freed with the process
    // or, once unreachable, by koffi's finalizer.
    this.#recv = koffi.alloc('uint8_t', recvSize);
    const recvBuffer = koffi.view(this.#recv, recvSize);
    this.#view = new DataView(recvBuffer);
    this.#bytes = new Uint8Array(recvBuffer);
    this.#recvBase = koffi.address(this.#recv) as bigint;
    const sendSize = capacity * (MMSG_SIZE + IOVEC_SIZE);
    this.#send = koffi.alloc('uint8_t', sendSize);
    this.#sendView = new DataView(koffi.view(this.#send, sendSize));
    this.#sendBase = koffi.address(this.#send) as bigint;
    this.#poll = koffi.alloc('uint8_t', POLLFD_SIZE * 64);
    this.#pollView = new DataView(koffi.view(this.#poll, POLLFD_SIZE * 64));
    this.#replies = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) {
      const header = i * MMSG_SIZE;
      const iov = this.#iovOffset + i * IOVEC_SIZE;
      this.#view.setBigUint64(header + MSG_NAME, this.#recvBase + BigInt(this.#addressOffset + i * ADDRESS_SIZE), true);
      this.#view.setBigUint64(header + MSG_IOV, this.#recvBase + BigInt(iov), true);
      this.#view.setBigUint64(header + MSG_IOVLEN, 1n, true);
      this.#view.setBigUint64(iov, this.#recvBase + BigInt(this.#dataOffset + i * DATAGRAM_SLOT_SIZE), true);
      this.#view.setBigUint64(iov + 8, BigInt(DATAGRAM_SLOT_SIZE), true);
      const sendHeader = i * MMSG_SIZE;
      this.#sendView.setBigUint64(
        sendHeader + MSG_IOV,
        this.#sendBase + BigInt(this.#iovOffset + i * IOVEC_SIZE),
        true,
      );
      this.#sendView.setBigUint64(sendHeader + MSG_IOVLEN, 1n, true);
    }
  }

  /**
   * Receives up to `capacity` datagrams waiting on `fd` without blocking. Returns how many (0: none waiting);
   * throws a {@link DatagramBatchError} on any other failure. Forgets the replies queued from the last batch.
   */
  receive(fd: number): number {
    const view = this.#view;
    // The kernel writes each address's length back: give every slot its full room again.
    for (let i = 0; i < this.#received; i++) view.setUint32(i * MMSG_SIZE + MSG_NAMELEN, ADDRESS_SIZE, true);
    if (this.#received === 0) {
      for (let i = 0; i < this.capacity; i++) view.setUint32(i * MMSG_SIZE + MSG_NAMELEN, ADDRESS_SIZE, true);
    }
    this.#replyCount = 0;
    const n = this.#lib.recvmmsg(fd, this.#recv, this.capacity, MSG_DONTWAIT, null);
    if (n >= 0) {
      this.#received = n;
      return n;
    }
    this.#received = 0;
    const errno = this.#lib.errno();
    if (errno === EAGAIN || errno === EINTR) return 0;
    throw batchError('recvmmsg', errno);
  }

  /** Payload length of datagram `i` of the last receive. */
  length(i: number): number {
    return this.#view.getUint32(i * MMSG_SIZE + MSG_LEN, true);
  }

  /** True when datagram `i` was larger than its slot and cut (cannot happen with 64 KiB slots and UDP). */
  truncated(i: number): boolean {
    return (this.#view.getInt32(i * MMSG_SIZE + MSG_FLAGS, true) & MSG_TRUNC) !== 0;
  }

  /** Source port of datagram `i`. */
  port(i: number): number {
    return this.#view.getUint16(this.#addressOffset + i * ADDRESS_SIZE + 2, false);
  }

  /** Source address of datagram `i` as text, as dgram gives it ('192.0.2.1', '::1', '::ffff:192.0.2.1'). */
  address(i: number): string {
    const bytes = this.#bytes;
    const at = this.#addressOffset + i * ADDRESS_SIZE;
    const family = this.#view.getUint16(at, true);
    if (family === AF_INET) return `${bytes[at + 4]}.${bytes[at + 5]}.${bytes[at + 6]}.${bytes[at + 7]}`;
    if (family !== AF_INET6) return `family ${family}`;
    const words: number[] = [];
    for (let w = 0; w < 8; w++) words.push(this.#view.getUint16(at + 8 + w * 2, false));
    return formatIpv6(words);
  }

  /** Payload of datagram `i`: a view of the batch's memory, valid until the next receive. */
  data(i: number): Uint8Array {
    const start = this.#dataOffset + i * DATAGRAM_SLOT_SIZE;
    return this.#bytes.subarray(start, start + this.length(i));
  }

  /** Queues datagram `i` of the last receive to be sent back, unchanged, to its source. */
  reply(i: number): void {
    this.#replies[this.#replyCount++] = i;
  }

  /** Replies queued since the last receive. */
  get replyCount(): number {
    return this.#replyCount;
  }

  /** Payload bytes of the queued replies from position `from` (inclusive) to `to` (exclusive). */
  replyBytes(from: number, to: number): number {
    let bytes = 0;
    for (let k = from; k < to; k++) bytes += this.length(this.#replies[k] as number);
    return bytes;
  }

  /**
   * Sends the queued replies from position `from` on `fd`, without blocking. Returns how many left (a prefix);
   * 0 when the socket's send buffer is full (EAGAIN). Throws a {@link DatagramBatchError} when the first of them
   * failed otherwise (the kernel refused that destination: the caller may skip it and go on).
   */
  send(fd: number, from = 0): number {
    const count = this.#replyCount - from;
    if (count <= 0) return 0;
    const view = this.#view;
    const sendView = this.#sendView;
    for (let k = 0; k < count; k++) {
      const i = this.#replies[from + k] as number;
      const header = k * MMSG_SIZE;
      sendView.setBigUint64(header + MSG_NAME, this.#recvBase + BigInt(this.#addressOffset + i * ADDRESS_SIZE), true);
      sendView.setUint32(header + MSG_NAMELEN, view.getUint32(i * MMSG_SIZE + MSG_NAMELEN, true), true);
      const iov = this.#iovOffset + k * IOVEC_SIZE;
      sendView.setBigUint64(iov, this.#recvBase + BigInt(this.#dataOffset + i * DATAGRAM_SLOT_SIZE), true);
      sendView.setBigUint64(iov + 8, BigInt(this.length(i)), true);
    }
    const sent = this.#lib.sendmmsg(fd, this.#send, count, MSG_DONTWAIT);
    if (sent >= 0) return sent;
    const errno = this.#lib.errno();
    if (errno === EAGAIN || errno === EINTR) return 0;
    throw batchError('sendmmsg', errno);
  }

  /**
   * Blocks until one of `fds` (at most 64) has a datagram waiting or `timeoutMs` passes. Returns false on timeout.
   */
  wait(fds: readonly number[], timeoutMs: number): boolean {
    if (fds.length > 64) throw new RangeError(`wait() takes at most 64 descriptors, got ${fds.length}`);
    const view = this.#pollView;
    for (let k = 0; k < fds.length; k++) {
      view.setInt32(k * POLLFD_SIZE, fds[k] as number, true);
      view.setInt16(k * POLLFD_SIZE + 4, POLLIN, true);
      view.setInt16(k * POLLFD_SIZE + 6, 0, true);
    }
    const ready = this.#lib.poll(this.#poll, fds.length, timeoutMs);
    if (ready >= 0) return ready > 0;
    const errno = this.#lib.errno();
    if (errno === EINTR) return false;
    throw batchError('poll', errno);
  }
}
