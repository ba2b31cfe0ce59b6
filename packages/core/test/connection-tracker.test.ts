import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionTracker } from '../src/runtime/connection-tracker.js';
import { Metrics } from '../src/runtime/metrics.js';

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
    expect(await m.render()).toMatch(/^net_connections_open 0$/m);
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
    expect(await m.render()).toMatch(/^net_connections_open 1$/m);
    expect(await m.render()).toMatch(/^net_connections_total 1$/m);
    client.destroy();
    await tracker.idle();
    server.close();
  });
});

describe('ConnectionTracker.replace', () => {
  it('tracks the socket a handle moved to as the same connection, and forgets the old one', async () => {
    const m = metrics();
    const tracker = new ConnectionTracker(m);
    const server = net.createServer({ pauseOnConnect: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [accepted] = (await once(server, 'connection')) as [net.Socket];
    tracker.add(accepted);
    // Re-wrap the handle, as a service taking over a socket does.
    const old = accepted as unknown as { _handle: unknown };
    const replacement = new net.Socket({ handle: old._handle } as net.SocketConstructorOpts);
    old._handle = null;
    tracker.replace(accepted, replacement);
    expect(tracker.size).toBe(1);
    const seen: net.Socket[] = [];
    tracker.forEach((s) => {
      seen.push(s);
    });
    expect(seen).toEqual([replacement]);
    expect(await m.render()).toMatch(/^net_connections_total 1$/m);
    // The old socket closing (it never does in a real move) would not touch the count.
    accepted.emit('close', false);
    expect(tracker.size).toBe(1);
    client.destroy();
    replacement.destroy();
    await tracker.idle();
    expect(tracker.size).toBe(0);
    expect(await m.render()).toMatch(/^net_connection_duration_seconds_count 1$/m);
    server.close();
  });

  it('tracks the replacement as a new connection when the old socket was not tracked', async () => {
    const tracker = new ConnectionTracker();
    const a = new net.Socket();
    const b = new net.Socket();
    tracker.replace(a, b);
    expect(tracker.size).toBe(1);
    b.destroy();
    await tracker.idle();
  });
});

describe('ConnectionTracker with connections that are not sockets (track/untrack)', () => {
  it('counts them, waits for them in idle(), destroys them with destroyAll and observes their lifetime', async () => {
    const m = metrics();
    const tracker = new ConnectionTracker(m);
    const destroyed: string[] = [];
    const a = { destroy: () => destroyed.push('a') };
    const b = { destroy: () => destroyed.push('b') };
    tracker.track(a);
    tracker.track(b);
    expect(tracker.size).toBe(2);
    expect(await m.render()).toMatch(/^net_connections_open 2$/m);
    expect(await m.render()).toMatch(/^net_connections_total 2$/m);
    let idle = false;
    const waiting = tracker.idle().then(() => {
      idle = true;
    });
    tracker.untrack(a);
    tracker.untrack(a); // a second untrack changes nothing
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    expect(tracker.size).toBe(1);
    tracker.destroyAll();
    expect(destroyed).toEqual(['b']);
    tracker.untrack(b);
    await waiting;
    expect(idle).toBe(true);
    expect(await m.render()).toMatch(/^net_connection_duration_seconds_count 2$/m);
    expect(await m.render()).toMatch(/^net_connections_open 0$/m);
  });
});
