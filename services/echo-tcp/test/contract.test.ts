import { randomBytes } from 'node:crypto';
import { type HeldWork, type Probe, serviceContract } from '@net/testkit';
import { BIN, collect, connectTo, echo, receive } from './helpers.js';

/** Proves the echo: random bytes come back unchanged; with holdOpen, bytes are echoed once and more are owed. */
const probe: Probe = async ({ host, port }, options = {}) => {
  // allowHalfOpen: the service's FIN at the start of a drain must not end our side; we finish when told to.
  const socket = await connectTo(port, { host, allowHalfOpen: true });
  if (!options.holdOpen) {
    const payload = randomBytes(4096);
    const result = await echo(socket, payload);
    if (!result.data.equals(payload)) throw new Error(`echo differs: ${result.data.length} of ${payload.length} bytes`);
    return;
  }
  const payload = randomBytes(64 * 1024);
  const done = collect(socket);
  socket.on('error', () => {});
  socket.write(payload.subarray(0, 1024));
  await receive(socket, 1024, 5000);
  // The rest is sent before the signal: the service has it, and owes its echo through the drain.
  socket.write(payload.subarray(1024));
  const work: HeldWork = {
    async finish() {
      socket.end();
      const result = await done;
      if (!result.data.equals(payload)) {
        throw new Error(`after the drain, ${result.data.length} of ${payload.length} bytes came back (${result.how})`);
      }
    },
    close() {
      socket.destroy();
    },
  };
  return work;
};

serviceContract({ service: 'echo-tcp', bin: BIN, probe, clients: ['client', 'check'] });
