import net from 'node:net';
import { type HeldWork, type Probe, serviceContract } from '@net/testkit';
import { BIN } from './helpers.js';

const LINE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/;

/**
 * A daytime exchange: connect, receive the line. With `holdOpen` the client keeps its side open after the answer
 * (allowHalfOpen), so the server still holds the connection, waiting for the client to close (up to
 * --close-timeout); `finish` checks the line and closes, which lets the drain end.
 */
const probe: Probe = ({ host, port }, options) =>
  new Promise<HeldWork | undefined>((resolve, reject) => {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    let received = '';
    let ended = false;
    const timer = setTimeout(() => fail(new Error(`no daytime line from ${host}:${port} within 5 s`)), 5000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const check = () => {
      if (!LINE.test(received)) throw new Error(`daytime-tcp answered ${JSON.stringify(received)}, not a ctime line`);
    };
    socket.on('error', fail);
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (!options?.holdOpen || !received.endsWith('\r\n')) return;
      clearTimeout(timer);
      const finish = async () => {
        check();
        if (!ended) await new Promise((r) => socket.once('end', r));
        await new Promise<void>((r) => socket.end(r));
      };
      resolve({ finish, close: () => socket.destroy() });
    });
    socket.on('end', () => {
      ended = true;
      if (options?.holdOpen) return;
      clearTimeout(timer);
      socket.end();
      try {
        check();
        resolve(undefined);
      } catch (err) {
        reject(err);
      }
    });
  });

// A held client must outlive the drain checks (several seconds), so the server may not destroy it at the
// default 2 s --close-timeout.
serviceContract({ service: 'daytime-tcp', bin: BIN, probe, extraArgs: ['--close-timeout', '60'], clients: ['client'] });
