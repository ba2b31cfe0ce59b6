/**
 * How a connection reaches the fast echo (fast-echo.ts): its libuv handle is moved into a socket built with the
 * engine's options (`onread` into the engine's buffer), by the fence of @net/core (node-internals.ts). Three ways:
 * on the listening handle itself (no throw-away socket per connection), from a socket accepted with
 * `pauseOnConnect` (where the listening handle does not look as expected), and from a socket read as a stream so far
 * (a PROXY listener's, once its header is in).
 */
import type { Server, Socket } from 'node:net';
import { acceptOnListeningHandle, readEnded, takeOverSocket } from '@net/core';
import { ConnectionState, type EchoContext, type EchoSocket } from './connection-state.js';
import type { FastEcho } from './fast-echo.js';
import { kConnection } from './symbols.js';

/**
 * Takes over a socket accepted by a `net.Server` created with `pauseOnConnect: true`: returns the fast socket that
 * now owns its handle and its place in the server's connection count, carrying `state`.
 */
export function takeOver(accepted: Socket, engine: FastEcho, state: ConnectionState): EchoSocket {
  return engine.adopt(takeOverSocket(accepted, engine.socketOptions), state);
}

/**
 * Makes `server` (created with `allowHalfOpen`, `noDelay`, `pauseOnConnect`; listening) accept straight into fast
 * sockets, each with a new state in `context`, handed to `onSocket` (in connection churn, Node's Socket constructor,
 * its Duplex state and the take-over were 10 % of the server's samples, `bench:profile`). False, changing nothing,
 * when its handle does not allow it: the caller keeps its 'connection' listener.
 */
export function acceptOnHandle(
  server: Server,
  engine: FastEcho,
  context: EchoContext,
  onSocket: (socket: EchoSocket) => void,
): boolean {
  return acceptOnListeningHandle(server, engine.socketOptions, (socket) =>
    onSocket(engine.adopt(socket, new ConnectionState(context))),
  );
}

/**
 * {@link takeOver} for a socket that has been read as a stream (a PROXY listener's, once its header is read): its
 * state moves to the new socket; returns it and the bytes the old one had buffered (to be echoed first, after any
 * greeting), or undefined when the client's FIN has arrived already (the handle reads no more then: the stream echo
 * finishes that connection).
 */
export function takeOverAfterReads(
  socket: EchoSocket,
  engine: FastEcho,
): { socket: EchoSocket; owed: Buffer[] } | undefined {
  if (readEnded(socket)) return undefined;
  const owed: Buffer[] = [];
  // Synchronous from here to the handle's move: libuv delivers no read to the old socket in between.
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
    owed.push(chunk);
  return { socket: takeOver(socket, engine, socket[kConnection]), owed };
}
