import { once } from 'node:events';
import net from 'node:net';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { metric, metricBecomes, startServer } from './helpers.js';

afterEach(() => stopAllServices());

// With the fence's hook (test/server.test.ts), a reset after the answer ends the connection quietly. Where the fence
// says the internals are not there, the answered socket keeps Node's own read path: the reset still ends the
// connection at once, as an ordinary socket error.
describe('daytime-tcp where the fence says no (NET_NODE_INTERNALS=off)', () => {
  it('still closes at once a client that resets after its answer, counting the reset as a socket error', async () => {
    const { port, adminUrl: admin } = await startServer(['--admin-port', '0', '--close-timeout', '30'], {
      NET_NODE_INTERNALS: 'off',
    });
    for (let i = 0; i < 3; i++) {
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => {});
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      await once(socket, 'end');
      socket.write('bye\r\n');
      expect(await metricBecomes(admin as string, 'net_received_bytes_total', '', 5 * (i + 1))).toBe(5 * (i + 1));
      socket.resetAndDestroy();
      expect(Buffer.concat(chunks).toString()).toHaveLength(26);
    }
    // Not left for --close-timeout (30 s): each reset ended its connection, through Node's 'error'.
    expect(await metricBecomes(admin as string, 'net_connections_open', '', 0)).toBe(0);
    expect(await metricBecomes(admin as string, 'net_errors_total', 'code="ECONNRESET"', 3)).toBe(3);
    expect(await metric(admin as string, 'net_limit_hits_total', 'close_timeout')).toBe(0);
  });
});
