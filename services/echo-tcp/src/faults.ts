/**
 * Test knobs, all off by default: delay every echo, close after N bytes or N seconds, end with a reset instead of a
 * FIN. People run echo servers to test load balancers and clients, and these are the failures they ask for.
 *
 * A connection with any knob on gets these handlers instead of the stream echo's (stream-echo.ts); the plain hot
 * paths never check them. The same bound holds: bytes scheduled (delayed) plus bytes queued count against --max-buffered.
 */
import type { EchoSocket, FaultOptions, FaultState } from './connection-state.js';
import { kConnection } from './symbols.js';

export type { FaultOptions } from './connection-state.js';

/** True when any knob is on. */
export function faultsEnabled(o: FaultOptions): boolean {
  return o.delayMs > 0 || o.closeAfterBytes > 0 || o.closeAfterSeconds > 0 || o.closeWithReset;
}

/** The knobs' bookkeeping of a faulty connection (set by startFaultyEcho). */
function faultsOf(s: EchoSocket): FaultState {
  return s[kConnection].faults as FaultState;
}

const EMPTY = Buffer.alloc(0);

/** Starts echoing with the knobs on. The socket must carry its state (`kConnection`). */
export function startFaultyEcho(socket: EchoSocket, options: FaultOptions): void {
  const f: FaultState = { options, echoed: 0, scheduled: 0, closing: false, timer: undefined };
  socket[kConnection].faults = f;
  const s = socket;
  s.on('data', faultyOnData);
  s.on('drain', faultyOnDrain);
  s.on('end', faultyOnEnd);
  s.once('close', faultyOnClose);
  if (options.closeAfterSeconds > 0) {
    f.timer = setTimeout(finishFaultyEcho, options.closeAfterSeconds * 1000, s);
  }
}

function faultyOnData(this: EchoSocket, chunk: Buffer): void {
  if (echoChunk(this, chunk)) finishFaultyEcho(this);
  else if (queued(this) > this[kConnection].context.maxBuffered) {
    this.pause();
    this[kConnection].context.onBackpressure();
  }
}

/** Echoes (now or later) what the knobs allow of `chunk`; true when closeAfterBytes has been reached. */
function echoChunk(s: EchoSocket, chunk: Buffer): boolean {
  const f = faultsOf(s);
  const stats = s[kConnection].context.stats;
  stats.receivedBytes += chunk.length;
  if (f.closing) return false;
  const limit = f.options.closeAfterBytes;
  const reached = limit > 0 && f.echoed + chunk.length >= limit;
  const data = reached ? chunk.subarray(0, limit - f.echoed) : chunk;
  f.echoed += data.length;
  if (data.length === 0) return reached;
  if (f.options.delayMs > 0) {
    f.scheduled += data.length;
    // Timers of equal duration fire in the order they were set, so delayed echoes keep the stream's order.
    setTimeout(writeLater, f.options.delayMs, s, data);
  } else {
    stats.sentBytes += data.length;
    s.write(data);
  }
  return reached;
}

function writeLater(s: EchoSocket, data: Buffer): void {
  const f = faultsOf(s);
  f.scheduled -= data.length;
  if (s.destroyed || s.writableEnded) return;
  s[kConnection].context.stats.sentBytes += data.length;
  s.write(data);
  if (f.closing) {
    if (f.scheduled === 0) closeSocket(s);
  } else if (s.isPaused() && queued(s) <= s[kConnection].context.maxBuffered) {
    s.resume();
  }
}

function queued(s: EchoSocket): number {
  return faultsOf(s).scheduled + s.writableLength;
}

function faultyOnDrain(this: EchoSocket): void {
  if (!faultsOf(this).closing && queued(this) <= this[kConnection].context.maxBuffered) this.resume();
}

function faultyOnEnd(this: EchoSocket): void {
  finishFaultyEcho(this);
}

function faultyOnClose(this: EchoSocket): void {
  clearTimeout(faultsOf(this).timer);
}

/**
 * Stops echoing new input and closes after what is owed (delayed echoes included): on the client's FIN, at the
 * byte or time limit, or at the start of a drain. Later input is read and discarded, so that a FIN close is not
 * turned into a reset by unread data.
 */
export function finishFaultyEcho(socket: EchoSocket): void {
  const s = socket;
  const f = faultsOf(s);
  if (f.closing || s.destroyed) return;
  // Bytes Node read ahead while we were paused were received: they are owed.
  for (let chunk = s.read() as Buffer | null; chunk !== null && !f.closing; chunk = s.read() as Buffer | null) {
    if (echoChunk(s, chunk)) break;
  }
  f.closing = true;
  clearTimeout(f.timer);
  s.off('data', faultyOnData);
  s.on('data', discard);
  s.resume();
  if (f.scheduled === 0) closeSocket(s);
}

function closeSocket(s: EchoSocket): void {
  if (s.destroyed) return;
  if (!faultsOf(s).options.closeWithReset) {
    s.end();
    return;
  }
  if (s.writableEnded) {
    s.resetAndDestroy();
    return;
  }
  // Write callbacks run in order: once this empty write completes, every echo before it reached the kernel.
  // resetAndDestroy() sets SO_LINGER 0, so close(2) sends RST instead of FIN (socket(7)).
  s.write(EMPTY, () => {
    if (!s.destroyed) s.resetAndDestroy();
  });
}

function discard(): void {}
