import dgram from 'node:dgram';
import { type HeldWork, type Probe, serviceContract } from '@net/testkit';
import { BIN, exchange } from './helpers.js';

/** One datagram out, its identical echo back; retried twice, as loopback may drop under load. */
async function echoes(socket: dgram.Socket, text: string, port: number, host: string): Promise<void> {
  const payload = Buffer.from(text);
  for (let attempt = 0; attempt < 3; attempt++) {
    const reply = await exchange(socket, payload, port, host, 1000);
    if (reply?.equals(payload)) return;
    if (reply) throw new Error(`udp-echo answered ${JSON.stringify(reply.toString())} to ${JSON.stringify(text)}`);
  }
  throw new Error(`no echo of ${JSON.stringify(text)} from ${host}:${port} in 3 attempts`);
}

/**
 * UDP has no connection to hold open: the held work is the exchange itself. `finish` sends another datagram after
 * the signal and needs its echo, which proves the service keeps answering during its drain.
 */
const probe: Probe = async ({ host, port }, options) => {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => {});
  let closed = false;
  const close = () => {
    if (!closed) socket.close();
    closed = true;
  };
  try {
    await echoes(socket, 'contract probe', port, host);
  } catch (err) {
    close();
    throw err;
  }
  if (!options?.holdOpen) return close();
  const work: HeldWork = {
    finish: async () => {
      try {
        await echoes(socket, 'after the signal', port, host);
      } finally {
        close();
      }
    },
    close,
  };
  return work;
};

serviceContract({ service: 'udp-echo', bin: BIN, probe, transport: 'udp', clients: ['client', 'check'] });
