import type net from 'node:net';
import { startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { binOf } from '../src/bins.js';
import { recordFigures } from '../src/results.js';
import { connectTo, runPool } from '../src/tcp-load.js';

const CONNECTIONS = 100;
const DRAIN_S = 10;
const CHUNK = 16 * 1024;
/** Unechoed bytes per connection at most: small enough that every byte written is in the service's receive buffer. */
const WINDOW = 256 * 1024;
const STREAM_MS = 2_000;

afterEach(stopAllServices);

/** Byte k of connection `id`'s stream: a pattern, so that a reordered, lost or foreign byte is caught at once. */
const patternByte = (id: number, k: number) => (k * 7 + id * 13) & 0xff;

interface Streamer {
  socket: net.Socket;
  sent: number;
  written: number; // bytes whose write completed (in the kernel)
  echoed: number;
  corrupt: boolean;
  error: string | undefined;
  closed: Promise<number>;
  stop: () => void;
}

function stream(socket: net.Socket, id: number): Streamer {
  const st: Streamer = {
    socket,
    sent: 0,
    written: 0,
    echoed: 0,
    corrupt: false,
    error: undefined,
    closed: Promise.resolve(0),
    stop: () => {},
  };
  let stopped = false;
  const pump = () => {
    while (!stopped && st.sent - st.echoed < WINDOW) {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let i = 0; i < CHUNK; i++) buf[i] = patternByte(id, st.sent + i);
      st.sent += CHUNK;
      socket.write(buf, (err) => {
        if (!err) st.written += CHUNK;
      });
    }
  };
  socket.on('data', (d: Buffer) => {
    for (let i = 0; i < d.length; i++) {
      if (d[i] !== patternByte(id, st.echoed + i)) {
        st.corrupt = true;
        break;
      }
    }
    st.echoed += d.length;
    pump();
  });
  socket.on('error', (err) => {
    st.error = (err as NodeJS.ErrnoException).code ?? err.message;
  });
  st.closed = new Promise((resolve) => socket.once('close', () => resolve(performance.now())));
  st.stop = () => {
    stopped = true;
  };
  pump();
  return st;
}

describe('case 6: SIGTERM under load, echo-tcp', () => {
  it(`echoes every byte received before the signal to each of ${CONNECTIONS} streaming connections, then exits 0 within the drain period`, async () => {
    const svc = await startService(binOf('echo-tcp'), ['serve', '--port', '0', '--drain-timeout', String(DRAIN_S)]);
    const streamers: Streamer[] = [];
    const opened = await runPool(CONNECTIONS, 50, async (i) => {
      streamers.push(stream(await connectTo(svc.port), i));
    });
    expect(opened.failures).toEqual([]);
    await new Promise((r) => setTimeout(r, STREAM_MS));

    // The figure each connection must get back: every byte its kernel had taken when the signal was sent.
    const owed = streamers.map((s) => s.written);
    for (const s of streamers) s.stop();
    const signalledAt = performance.now();
    svc.kill('SIGTERM');
    const closedAt = await Promise.all(streamers.map((s) => s.closed));
    const exit = await svc.exited;
    const exitMs = performance.now() - signalledAt;

    const short = streamers.map((s, i) => ({ i, lost: (owed[i] as number) - s.echoed })).filter((x) => x.lost > 0);
    const totalOwed = owed.reduce((a, b) => a + b, 0);
    const totalEchoed = streamers.reduce((a, s) => a + s.echoed, 0);
    const figures = {
      connections: CONNECTIONS,
      streamedSecondsBeforeSignal: STREAM_MS / 1000,
      bytesOwedAtSignal: totalOwed,
      bytesEchoed: totalEchoed,
      connectionsShort: short.length,
      bytesLost: short.reduce((a, x) => a + x.lost, 0),
      corruptConnections: streamers.filter((s) => s.corrupt).length,
      socketErrors: streamers.filter((s) => s.error !== undefined).map((s) => s.error),
      lastCloseAfterSignalMs: Math.round(Math.max(...closedAt) - signalledAt),
      exitAfterSignalMs: Math.round(exitMs),
      drainTimeoutSeconds: DRAIN_S,
      exitCode: exit.code,
      pass: false,
    };
    figures.pass = short.length === 0 && figures.corruptConnections === 0 && exit.code === 0 && exitMs < DRAIN_S * 1000;
    recordFigures('06-sigterm-under-load', figures);

    expect(figures.corruptConnections).toBe(0);
    expect(short.slice(0, 5)).toEqual([]);
    expect(figures.socketErrors).toEqual([]);
    expect(exit.code).toBe(0);
    expect(exitMs).toBeLessThan(DRAIN_S * 1000);
  });
});
