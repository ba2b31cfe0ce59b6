// The Node baseline the services are compared with: the shortest correct echo Node offers.
// TCP: `socket.pipe(socket)` (backpressure for free: pipe pauses reading while the write side is full).
// UDP: `dgram` answering each datagram to its sender.
// usage: node node-pipe-echo.mjs --port N [--udp-port M] [--host 127.0.0.1]
import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' }, 'udp-port': { type: 'string' } },
});

if (values.port) {
  // noDelay: Nagle plus delayed ACK would cap 4 KiB ping-pong at ~25 messages/s (docs/measurements.md §6); the C reference
  // sets TCP_NODELAY too. An 'error' handler: a reset peer must not crash the server.
  net
    .createServer({ noDelay: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      socket.pipe(socket);
    })
    .listen(Number(values.port), values.host);
}

if (values['udp-port']) {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
  udp.on('error', () => {}); // ICMP port unreachable from a client that left: UDP may drop
  udp.bind(Number(values['udp-port']), values.host);
}
