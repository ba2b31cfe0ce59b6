/**
 * The shared service contract (docs/service-contract.md). The probe: a keepalive-probe server accepts a connection
 * and holds it; the held work is that connection, which the drain must leave open until the client closes it.
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { type HeldWork, type ProbeEndpoint, serviceContract } from '@net/testkit';

function connectTo({ host, port }: ProbeEndpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function probe(endpoint: ProbeEndpoint, options?: { holdOpen?: boolean }): Promise<HeldWork | undefined> {
  const socket = await connectTo(endpoint);
  if (!options?.holdOpen) {
    socket.destroy();
    return undefined;
  }
  socket.on('error', () => {});
  return {
    // The server keeps a held connection open through the drain (it half-closes its side); the client ends it.
    finish: () =>
      new Promise<void>((resolve, reject) => {
        if (socket.destroyed) return reject(new Error('the service closed the held connection before the client did'));
        socket.once('close', () => resolve());
        socket.end();
        socket.resume();
      }),
    close: () => socket.destroy(),
  };
}

serviceContract({
  service: 'keepalive-probe',
  bin: fileURLToPath(new URL('../dist/main.js', import.meta.url)),
  probe,
});
