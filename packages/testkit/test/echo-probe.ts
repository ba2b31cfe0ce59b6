/**
 * The probe of the tiny echo fixture, written the way a service writes its own: one round trip; with
 * `holdOpen`, bytes sent and echoed before the signal, and `finish()` proving that everything sent comes back.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { HeldWork, Probe } from '../src/index.js';

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Reads until `n` bytes arrived (or the stream ended). */
function readBytes(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      if (have >= n) done();
    };
    const done = () => {
      socket.off('data', onData).off('end', done).off('error', reject);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', onData).once('end', done).once('error', reject);
  });
}

export const echoProbe: Probe = async ({ host, port }, options) => {
  const socket = await connect(host, port);
  const first = Buffer.from('hello before the signal\n');
  socket.write(first);
  assert.deepEqual(await readBytes(socket, first.length), first);
  if (!options?.holdOpen) {
    socket.end();
    await new Promise((resolve) => socket.once('close', resolve).resume());
    return;
  }
  const work: HeldWork = {
    async finish() {
      const rest = Buffer.from('and the rest after it\n');
      socket.end(rest);
      assert.deepEqual(await readBytes(socket, Number.POSITIVE_INFINITY), rest, 'every byte must come back');
    },
    close: () => socket.destroy(),
  };
  return work;
};
