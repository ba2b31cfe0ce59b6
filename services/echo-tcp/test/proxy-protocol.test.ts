import { encodeProxyV2 } from '@net/core';
import { portOf, runToExit, type ServiceProcess, sampleValue, scrapeMetrics, stopAllServices } from '@net/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, collect, connectTo, echo, receive, startEcho } from './helpers.js';

// HAProxy 2.6's own bytes (docs/measurements.md §3): 192.0.2.100:60700 -> 192.0.2.2:7000, and its LOCAL health-check header.
const HAPROXY_V2 = Buffer.from('0d0a0d0a000d0a515549540a2111000cc0000264c0000202ed1c1b58', 'hex');
const HAPROXY_LOCAL = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
const NGINX_V1 = Buffer.from('PROXY TCP4 192.0.2.100 192.0.2.2 40684 7100\r\n', 'latin1');

describe('PROXY protocol', () => {
  let service: ServiceProcess;
  let plainPort: number;
  let proxyPort: number;

  beforeAll(async () => {
    service = await startEcho([
      '--proxy-listen',
      '127.0.0.1:0',
      '--proxy-timeout',
      '0.5',
      '--log-level',
      'debug',
      '--admin-port',
      '0',
    ]);
    plainPort = service.port;
    proxyPort = portOf(service.endpoints[1] ?? '');
  });
  afterAll(stopAllServices);

  const errors = async (reason: string) =>
    sampleValue(await scrapeMetrics(`${service.adminUrl}/metrics`), 'net_proxy_header_errors_total', { reason }) ?? 0;

  /** The debug line the service logs when the connection from local port `localPort` closes. */
  const closedLine = (localPort: number) =>
    service.waitForLine(
      (l) => l.msg === 'connection closed' && String(l.via ?? l.peer).endsWith(`:${localPort}`),
      3000,
    );

  it('says which listener requires PROXY at start, and serves the plain one without a header', async () => {
    const line = await service.waitForLine((l) => String(l.msg).startsWith('listeners:'));
    expect(line.msg).toBe(`listeners: 127.0.0.1:${plainPort}, 127.0.0.1:${proxyPort} (PROXY)`);
    const result = await echo(await connectTo(plainPort), Buffer.from('plain'));
    expect(result.data.toString()).toBe('plain');
  });

  it('accepts a v1 header, echoes only the payload, and logs the real client address', async () => {
    const socket = await connectTo(proxyPort);
    const localPort = socket.localPort as number;
    const result = await echo(socket, Buffer.concat([NGINX_V1, Buffer.from('after v1')]));
    expect(result).toEqual({ data: Buffer.from('after v1'), how: 'eof' });
    const line = await closedLine(localPort);
    expect(line.peer).toBe('192.0.2.100:40684');
    expect(line.via).toBe(`127.0.0.1:${localPort}`);
  });

  it('accepts a v2 header (HAProxy bytes) arriving in pieces, and logs the real client address', async () => {
    const socket = await connectTo(proxyPort);
    const localPort = socket.localPort as number;
    const got = collect(socket);
    socket.write(HAPROXY_V2.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    socket.write(HAPROXY_V2.subarray(5));
    socket.end('after v2');
    expect((await got).data.toString()).toBe('after v2');
    expect((await closedLine(localPort)).peer).toBe('192.0.2.100:60700');
  });

  it('after the header, serves an interactive client to its close: data sent with the header first, then more', async () => {
    const socket = await connectTo(proxyPort);
    const localPort = socket.localPort as number;
    // Payload in the header's own write: what the header parser read past it is echoed before anything else.
    let back = receive(socket, 5);
    socket.write(Buffer.concat([HAPROXY_V2, Buffer.from('first')]));
    expect((await back).toString()).toBe('first');
    for (let i = 0; i < 3; i++) {
      back = receive(socket, 6);
      socket.write(`next-${i}`);
      expect((await back).toString()).toBe(`next-${i}`);
    }
    const big = Buffer.alloc(1 << 20, 7);
    back = receive(socket, big.length);
    socket.write(big);
    expect((await back).equals(big)).toBe(true);
    const got = collect(socket);
    socket.end('last');
    expect(await got).toEqual({ data: Buffer.from('last'), how: 'eof' });
    const line = await closedLine(localPort);
    expect(line.peer).toBe('192.0.2.100:60700');
    expect(line.receivedBytes).toBe(HAPROXY_V2.length + 5 + 3 * 6 + big.length + 4);
    expect(line.sentBytes).toBe(5 + 3 * 6 + big.length + 4);
    // Tracked to its close: nothing left open once every client of this file is gone.
    let open = -1;
    for (let i = 0; i < 50 && open !== 0; i++) {
      open = sampleValue(await scrapeMetrics(`${service.adminUrl}/metrics`), 'net_connections_open') ?? -1;
      if (open !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(open).toBe(0);
  });

  it('accepts a v2 TCP6 header', async () => {
    const header = encodeProxyV2({
      command: 'PROXY',
      family: 'TCP6',
      source: { address: '2001:db8::1', port: 1234 },
      destination: { address: '2001:db8::2', port: 7 },
    });
    const socket = await connectTo(proxyPort);
    const localPort = socket.localPort as number;
    const result = await echo(socket, Buffer.concat([header, Buffer.from('six')]));
    expect(result.data.toString()).toBe('six');
    expect((await closedLine(localPort)).peer).toBe('[2001:db8::1]:1234');
  });

  it('accepts a v2 LOCAL header (HAProxy health check) and then echoes as usual', async () => {
    const socket = await connectTo(proxyPort);
    const localPort = socket.localPort as number;
    const result = await echo(socket, Buffer.concat([HAPROXY_LOCAL, Buffer.from('hc-ping\n')]));
    expect(result.data.toString()).toBe('hc-ping\n');
    expect((await closedLine(localPort)).peer).toBe(`127.0.0.1:${localPort}`);
  });

  it('closes a connection whose header is truncated, and counts it', async () => {
    const before = await errors('truncated');
    const result = await echo(await connectTo(proxyPort), HAPROXY_V2.subarray(0, 20));
    expect(result.data.length).toBe(0);
    expect(await errors('truncated')).toBe(before + 1);
  });

  it('counts a connection that ends before any header byte as closed, and one reset mid-header as truncated', async () => {
    const waitFor = async (reason: string, value: number): Promise<number> => {
      let seen = await errors(reason);
      for (let i = 0; i < 100 && seen < value; i++) {
        await new Promise((r) => setTimeout(r, 20));
        seen = await errors(reason);
      }
      return seen;
    };
    const closedBefore = await errors('closed');
    const silent = await connectTo(proxyPort);
    const ended = await collect(silent.end());
    expect(ended.data.length).toBe(0);
    expect(await waitFor('closed', closedBefore + 1)).toBe(closedBefore + 1);

    const truncatedBefore = await errors('truncated');
    const reset = await connectTo(proxyPort);
    reset.write(HAPROXY_V2.subarray(0, 20));
    await new Promise((r) => setTimeout(r, 100)); // read by the server before the reset
    reset.resetAndDestroy();
    expect(await waitFor('truncated', truncatedBefore + 1)).toBe(truncatedBefore + 1);
  });

  it('closes a connection whose v1 line runs past 107 bytes without CRLF, without waiting for more', async () => {
    const before = await errors('too_long');
    const socket = await connectTo(proxyPort);
    const got = collect(socket);
    socket.write(`PROXY TCP4 ${'1'.repeat(200)}`); // no FIN: the service must decide on its own
    const result = await got;
    expect(result.data.length).toBe(0);
    expect(await errors('too_long')).toBe(before + 1);
  });

  it('closes a connection whose v2 header announces more than 1024 bytes, and counts it', async () => {
    const before = await errors('too_long');
    const header = Buffer.from(HAPROXY_V2);
    header.writeUInt16BE(4000, 14);
    const socket = await connectTo(proxyPort);
    const got = collect(socket);
    socket.write(header);
    expect((await got).data.length).toBe(0);
    expect(await errors('too_long')).toBe(before + 1);
  });

  it('closes a connection that sends payload without a header (bad signature)', async () => {
    const before = await errors('bad_signature');
    const result = await echo(await connectTo(proxyPort), Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    expect(result.data.length).toBe(0);
    expect(await errors('bad_signature')).toBe(before + 1);
  });

  it('closes a connection with no header after --proxy-timeout, and counts it', async () => {
    const before = await errors('timeout');
    const socket = await connectTo(proxyPort);
    socket.write('PROXY TCP4 '); // a slowloris: the beginning of a header, then nothing
    const result = await collect(socket);
    expect(result.data.length).toBe(0);
    expect(await errors('timeout')).toBe(before + 1);
  });

  it('closes at once a connection from a source outside --proxy-trusted, even with a valid header', async () => {
    const before = await errors('untrusted');
    // 127.0.0.2 is loopback too, but the default trust list is 127.0.0.1/32 and ::1/128.
    const socket = await connectTo(proxyPort, { localAddress: '127.0.0.2' });
    const result = await echo(socket, Buffer.concat([NGINX_V1, Buffer.from('spoofed')]));
    expect(result.data.length).toBe(0);
    expect(await errors('untrusted')).toBe(before + 1);
  });
});

describe('--proxy-protocol on the main listeners', () => {
  afterAll(stopAllServices);

  it('requires a header on --host/--port when --proxy-protocol is on, trusting only --proxy-trusted', async () => {
    const service = await startEcho(['--proxy-protocol', '--proxy-trusted', '127.0.0.2/32']);
    const fromTrusted = await echo(
      await connectTo(service.port, { localAddress: '127.0.0.2' }),
      Buffer.concat([NGINX_V1, Buffer.from('ok')]),
    );
    expect(fromTrusted.data.toString()).toBe('ok');
    const fromOther = await echo(await connectTo(service.port), Buffer.concat([NGINX_V1, Buffer.from('no')]));
    expect(fromOther.data.length).toBe(0);
  });

  it('refuses a bad --proxy-trusted value with exit code 2 and a message naming it', async () => {
    const r = await runToExit(BIN, ['serve', '--port', '0', '--proxy-trusted', '10.0.0.1/8']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--proxy-trusted');
    expect(r.stderr).toContain('10.0.0.0/8');
  });
});
