/**
 * The echo (RFC 862: "any data received is sent back") on a plain `net.Socket`, as Node's streams give it to us:
 *
 *   read a chunk -> write the same chunk back -> stop reading while too much is queued -> at EOF, flush and FIN.
 *
 * Used by TLS listeners, by `--io stream`, and wherever the fast path (fast-echo.ts) cannot run. The handlers are
 * module-level functions shared by every connection (no closure per connection) and find the connection's state on
 * the socket (connection-state.ts). Limits, PROXY headers, greetings and the test knobs are set up around this loop
 * (connection.ts, faults.ts), never inside it.
 */
import type { EchoSocket } from './connection-state.js';
import { kConnection } from './symbols.js';

/**
 * Starts echoing on a socket that carries its state. Expects a socket created with `allowHalfOpen: true`: the
 * client's FIN must not end our side before everything it sent has come back.
 */
export function startEcho(socket: EchoSocket): void {
  socket.on('data', socketOnData);
  socket.on('drain', socketOnDrain);
  socket.on('end', socketOnEnd);
}

/**
 * The hot path. `write(chunk)` queues the very buffer the read produced: no copy. Its `false` only says the queue
 * passed the stream's high-water mark; we stop reading once it passes our own bound, so a client that sends and
 * never reads costs at most --max-buffered bytes (plus one read), and TCP flow control then stops the client.
 */
function socketOnData(this: EchoSocket, chunk: Buffer): void {
  const echo = this[kConnection].context;
  echo.stats.receivedBytes += chunk.length;
  echo.stats.sentBytes += chunk.length;
  if (!this.write(chunk) && this.writableLength > echo.maxBuffered) {
    this.pause();
    echo.onBackpressure();
  }
}

/** The queue has been written out: read again. 'drain' is guaranteed because write() returned false. */
function socketOnDrain(this: EchoSocket): void {
  this.resume();
}

/**
 * The client half-closed (FIN). 'end' comes only after every byte before the FIN went through socketOnData, and
 * `end()` sends our FIN after the queued echoes, so nothing owed is lost at the end of a stream.
 */
function socketOnEnd(this: EchoSocket): void {
  this.end();
}

/**
 * Stops echoing new input and closes our side after what is owed (the start of a drain): bytes already read,
 * including those Node read ahead while we were paused, are echoed; later input is read and discarded, so the
 * kernel never resets the connection for unread data, until the client closes or the drain period ends.
 */
export function finishEcho(socket: EchoSocket): void {
  if (socket.destroyed || socket.writableEnded) return;
  socket.off('data', socketOnData);
  const echo = socket[kConnection].context;
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
    echo.stats.receivedBytes += chunk.length;
    echo.stats.sentBytes += chunk.length;
    socket.write(chunk);
  }
  socket.on('data', discard);
  socket.end();
  socket.resume();
}

function discard(): void {}
