/**
 * One daytime connection answered on its libuv handle (@net/core's raw handles, behind its Node-internals fence) instead of a `net.Socket`: the few things
 * the answer loop (server.ts) asks of a socket, `destroyed`, `writable`, `end(line)` and `destroy()`, with the same
 * outcomes. Its input is read and discarded from the start (RFC 867); a reset before the answer is out is a client
 * error, counted as the socket's 'error' would be; after it, the connection just closes, as on the stream path.
 */
import {
  closeRawHandle,
  RAW_READ_EOF,
  type RawClientHandle,
  type RawHandleEvents,
  readRawHandle,
  shutdownRawHandle,
  systemError,
  writeLatin1ToRawHandle,
} from '@net/core';

/** What a handle connection reports to its answer loop. */
export interface HandleClientOwner {
  /** Bytes the client sent (discarded). */
  received(bytes: number): void;
  /** The line and our FIN have been handed to the kernel (the socket's 'finish'). */
  answered(client: HandleClient): void;
  /** libuv is done with the handle (the socket's 'close'). */
  closed(client: HandleClient): void;
  /** A read, write or shutdown failed before the answer was out (the socket's 'error'). */
  socketError(err: NodeJS.ErrnoException): void;
}

/** The connections of one listener that are open, for its --max-connections (Node's own count is bypassed). */
export interface ListenerCount {
  open: number;
}

export class HandleClient implements RawHandleEvents {
  readonly #handle: RawClientHandle;
  readonly #owner: HandleClientOwner;
  readonly #listener: ListenerCount;
  /** destroy() was called: the handle is closing or closed. */
  destroyed = false;
  /** False once the answer has been started (end) or the connection destroyed. */
  writable = true;
  /** The client's FIN has arrived. */
  #eof = false;
  /** Our FIN is out. */
  #answered = false;
  trackedSince?: number;

  constructor(handle: RawClientHandle, owner: HandleClientOwner, listener: ListenerCount) {
    this.#handle = handle;
    this.#owner = owner;
    this.#listener = listener;
    listener.open++;
    const err = readRawHandle(handle, this);
    if (err < 0) this.#fail(err, 'read');
  }

  /** Writes the line, then our FIN: `answered` once both are with the kernel. */
  end(line: string, _encoding?: 'latin1'): void {
    this.writable = false;
    let err = writeLatin1ToRawHandle(this.#handle, line);
    if (err >= 0) err = shutdownRawHandle(this.#handle);
    if (err < 0) this.#fail(err, 'write');
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.writable = false;
    closeRawHandle(this.#handle);
  }

  /** @internal */
  onRead(bytes: number): void {
    if (bytes > 0) this.#owner.received(bytes);
    else if (bytes === RAW_READ_EOF) {
      // With the answer out, both sides are done; before it, a half-closed client still gets its line.
      this.#eof = true;
      if (this.#answered) this.destroy();
    } else if (this.#answered) this.destroy();
    else this.#fail(bytes, 'read');
  }

  /** @internal */
  onQueuedWrite(status: number): void {
    if (status < 0 && !this.destroyed) this.#fail(status, 'write');
  }

  /** @internal */
  onShutdown(status: number): void {
    if (this.destroyed) return;
    if (status < 0) {
      this.#fail(status, 'shutdown');
      return;
    }
    this.#answered = true;
    this.#owner.answered(this);
    if (this.#eof) this.destroy();
  }

  /** @internal */
  onClosed(): void {
    this.#listener.open--;
    this.#owner.closed(this);
  }

  #fail(errno: number, syscall: string): void {
    if (this.destroyed) return;
    this.#owner.socketError(systemError(errno, syscall));
    this.destroy();
  }
}
