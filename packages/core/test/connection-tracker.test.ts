import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionTracker } from '../src/connection-tracker.js';
import { Metrics } from '../src/metrics.js';

const CONNECTION_METRICS = ['net_connections_open', 'net_connections_total', 'net_connection_duration_seconds'];

function metrics() {
  return new Metrics({ service: 'demo', instance: 'i-1', version: '1.2.3', processMetrics: false, buildInfo: false });
}

async function names(m: Metrics): Promise<string[]> {
  return (await m.registry.getMetricsAsJSON()).map((f) => f.name);
}

describe('ConnectionTracker metrics', () => {
  it('registers the connection metrics at once by default, so a TCP service shows net_connections_open 0', async () => {
    const m = metrics();
    new ConnectionTracker(m);
    expect(await names(m)).toEqual(expect.arrayContaining(CONNECTION_METRICS));
    expect(await m.render()).toMatch(/^net_connections_open\{service="demo",instance="i-1"\} 0$/m);
  });

  it('with eager: false registers nothing until the first add(), then counts that connection', async () => {
    const m = metrics();
    const tracker = new ConnectionTracker(m, { eager: false });
    for (const name of CONNECTION_METRICS) expect(await names(m)).not.toContain(name);

    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [socket] = (await once(server, 'connection')) as [net.Socket];
    tracker.add(socket);
    expect(await names(m)).toEqual(expect.arrayContaining(CONNECTION_METRICS));
    expect(await m.render()).toMatch(/^net_connections_open\{service="demo",instance="i-1"\} 1$/m);
    expect(await m.render()).toMatch(/^net_connections_total\{service="demo",instance="i-1"\} 1$/m);
    client.destroy();
    await tracker.idle();
    server.close();
  });
});
