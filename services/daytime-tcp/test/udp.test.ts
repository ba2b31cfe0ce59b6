import dgram from 'node:dgram';
import { once } from 'node:events';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { metric, startServer } from './helpers.js';

const sockets: dgram.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await stopAllServices();
});

/** A UDP client socket bound to `port` (0: any free port). */
async function udpClient(type: 'udp4' | 'udp6' = 'udp4', port = 0): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  sockets.push(socket);
  socket.bind(port, type === 'udp4' ? '127.0.0.1' : '::1');
  await once(socket, 'listening');
  return socket;
}

/** Sends one datagram and resolves with the first answer, or rejects after 2 s. */
function ask(socket: dgram.Socket, port: number, host: string, payload = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no UDP answer within 2 s')), 2000);
    socket.once('message', (msg) => {
      clearTimeout(timer);
      resolve(msg.toString('latin1'));
    });
    socket.send(payload, port, host);
  });
}

/** Polls a metric until it reaches `want` (bounded: 60 polls, 50 ms apart). */
async function metricReaches(admin: string, name: string, labels: string, want: number): Promise<number | undefined> {
  let value: number | undefined;
  for (let i = 0; i < 60; i++) {
    value = await metric(admin, name, labels);
    if (value !== undefined && value >= want) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  return value;
}

describe('daytime-tcp serve --udp (RFC 867 over UDP)', () => {
  it('does not listen on UDP unless asked', async () => {
    const server = await startServer();
    expect(server.endpoints).toEqual([`127.0.0.1:${server.port}`]);
  });

  it('answers any datagram, even an empty one, with the date on the same port number as TCP', async () => {
    const server = await startServer(['--udp', '--utc', '--admin-port', '0']);
    expect(server.endpoints).toEqual([`127.0.0.1:${server.port}`, `127.0.0.1:${server.port}/udp`]);
    const client = await udpClient();
    expect(await ask(client, server.port, '127.0.0.1')).toMatch(
      /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/,
    );
    expect(await ask(client, server.port, '127.0.0.1', 'x'.repeat(1000))).toHaveLength(26);
    expect(await metric(server.adminUrl as string, 'net_datagrams_received_total')).toBe(2);
    expect(await metricReaches(server.adminUrl as string, 'net_datagrams_sent_total', '', 2)).toBe(2);
  });

  it('answers over IPv6', async () => {
    const server = await startServer(['--udp', '--host', '::1', '--format', 'rfc2822']);
    const client = await udpClient('udp6');
    expect(await ask(client, server.port, '::1')).toMatch(
      /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n$/,
    );
  });

  it('never answers a source port on the guard list, and counts the drop', async () => {
    const guarded = await udpClient();
    const guardedPort = guarded.address().port;
    const server = await startServer(['--udp', '--admin-port', '0', '--udp-guard-ports', `7,19,${guardedPort}`]);
    let answers = 0;
    guarded.on('message', () => answers++);
    guarded.send('loop?', server.port, '127.0.0.1');
    expect(
      await metricReaches(server.adminUrl as string, 'net_datagrams_dropped_total', 'reason="reflection_guard"', 1),
    ).toBe(1);
    // The drop is decided: nothing was sent for it. A client on another port is answered, which also proves the
    // server had every chance to answer the guarded one first (one socket, datagrams handled in order).
    expect(await ask(await udpClient(), server.port, '127.0.0.1')).toHaveLength(26);
    expect(answers).toBe(0);
    expect(await metric(server.adminUrl as string, 'net_datagrams_sent_total')).toBe(1);
  });

  it("guards whole port ranges (core's setting type, the same as udp-echo's --guard-ports)", async () => {
    const guarded = await udpClient();
    const guardedPort = guarded.address().port;
    const control = await udpClient();
    // A two-port range around the guarded client that leaves out the control client.
    const low = control.address().port === guardedPort - 1 ? guardedPort : guardedPort - 1;
    const range = `${low}-${low + 1}`;
    const server = await startServer(['--udp', '--admin-port', '0', '--udp-guard-ports', range]);
    let answers = 0;
    guarded.on('message', () => answers++);
    guarded.send('loop?', server.port, '127.0.0.1');
    expect(
      await metricReaches(server.adminUrl as string, 'net_datagrams_dropped_total', 'reason="reflection_guard"', 1),
    ).toBe(1);
    expect(await ask(control, server.port, '127.0.0.1')).toHaveLength(26);
    expect(answers).toBe(0);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'guards the chargen port 19 by default (needs root to send from port 19)',
    async () => {
      const server = await startServer(['--udp', '--admin-port', '0']);
      const chargen = await udpClient('udp4', 19);
      chargen.send('x', server.port, '127.0.0.1');
      expect(
        await metricReaches(server.adminUrl as string, 'net_datagrams_dropped_total', 'reason="reflection_guard"', 1),
      ).toBe(1);
    },
  );

  it('caps answers per second with --udp-rate and counts what it drops', async () => {
    const server = await startServer(['--udp', '--admin-port', '0', '--udp-rate', '2']);
    const client = await udpClient();
    let answers = 0;
    client.on('message', () => answers++);
    for (let i = 0; i < 20; i++) client.send('x', server.port, '127.0.0.1');
    const admin = server.adminUrl as string;
    expect(await metricReaches(admin, 'net_datagrams_received_total', '', 20)).toBe(20);
    const dropped = (await metric(admin, 'net_datagrams_dropped_total', 'reason="rate_limit"')) ?? 0;
    const sent = (await metric(admin, 'net_datagrams_sent_total')) ?? 0;
    expect(sent + dropped).toBe(20);
    // A bucket of 2, plus what refills (2/s) while the 20 datagrams arrive: milliseconds, or a second on a
    // very busy machine.
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(sent).toBeLessThanOrEqual(4);
  });
});
