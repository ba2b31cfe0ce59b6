// Node baseline for daytime (RFC 867): write one date line and close.
// usage: node node-daytime.mjs --port N [--host 127.0.0.1]
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' } } });

net
  .createServer((socket) => {
    socket.on('error', () => socket.destroy());
    // Anything the client sends is read and dropped; the close after the line ends the exchange.
    socket.resume();
    socket.end(`${new Date().toUTCString()}\r\n`);
  })
  .listen(Number(values.port), values.host);
