import type dns from 'node:dns';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { CLIENT_EXIT, CLIENT_EXIT_MEANINGS, clientExitCode, formatClientExitCodes } from '../src/client/client-exit.js';
import {
  BadEndpointError,
  BadReplyError,
  ConfigError,
  ConnectError,
  PeerResetError,
  PrematureEofError,
  SizeLimitError,
  TimeoutError,
} from '../src/errors.js';
import { connect } from '../src/net/connect.js';

/** A Node system error as net reports it. */
function errno(code: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`connect ${code}`);
  e.code = code;
  return e;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('clientExitCode', () => {
  it('maps a real refused connect to 69 and a name that does not resolve to 68', async () => {
    const port = await closedPort();
    const refused = await connect(`127.0.0.1:${port}`, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(clientExitCode(refused)).toBe(CLIENT_EXIT.UNAVAILABLE);
    const lookup = async () => {
      throw errno('ENOTFOUND');
    };
    const unresolved = await connect('no-such-host.invalid:7', { lookup }).catch((e: unknown) => e);
    expect(clientExitCode(unresolved)).toBe(CLIENT_EXIT.NO_HOST);
  });

  it('maps timeouts to 75, resets, early ends and short replies to 76, wrong answers to 1, bad usage to 2', () => {
    expect(clientExitCode(new TimeoutError('connect to x', 100))).toBe(75);
    expect(clientExitCode(errno('ETIMEDOUT'))).toBe(75);
    expect(clientExitCode(new PeerResetError(3))).toBe(76);
    expect(clientExitCode(errno('EPIPE'))).toBe(76);
    expect(clientExitCode(new PrematureEofError(10, 3, Buffer.alloc(3)))).toBe(76);
    expect(clientExitCode(new BadReplyError('x', 'differs'))).toBe(1);
    expect(clientExitCode(new SizeLimitError(1024, 4096))).toBe(1);
    expect(clientExitCode(new ConfigError('--timeout', 'soon', 'expected seconds'))).toBe(2);
    expect(clientExitCode(new BadEndpointError('x:99999', 'port out of range'))).toBe(2);
  });

  it('judges happy eyeballs by the address attempt that got furthest', () => {
    const attempt = (address: string, code: string) => ({ address, error: errno(code) });
    // ::1 refused, 127.0.0.1 accepted and reset: the service is there and broke the exchange.
    expect(
      clientExitCode(
        new ConnectError('localhost:7', [attempt('[::1]:7', 'ECONNREFUSED'), attempt('127.0.0.1:7', 'ECONNRESET')]),
      ),
    ).toBe(76);
    // Order does not matter.
    expect(
      clientExitCode(
        new ConnectError('localhost:7', [attempt('127.0.0.1:7', 'ECONNRESET'), attempt('[::1]:7', 'ECONNREFUSED')]),
      ),
    ).toBe(76);
    // An attempt that timed out got further than one refused.
    expect(
      clientExitCode(new ConnectError('h:7', [attempt('[::1]:7', 'ENETUNREACH'), attempt('192.0.2.1:7', 'ETIMEDOUT')])),
    ).toBe(75);
    expect(
      clientExitCode(
        new ConnectError('h:7', [attempt('[::1]:7', 'ECONNREFUSED'), attempt('127.0.0.1:7', 'ECONNREFUSED')]),
      ),
    ).toBe(69);
    // Node's own autoSelectFamily reports an AggregateError of its attempts.
    expect(clientExitCode(new AggregateError([errno('ECONNREFUSED'), errno('ECONNRESET')], 'all failed'))).toBe(76);
    expect(clientExitCode(new AggregateError([errno('EHOSTUNREACH'), errno('ECONNREFUSED')], 'all failed'))).toBe(69);
  });

  it('maps an AggregateError from a real Node autoSelectFamily connect to a refused localhost to 69', async () => {
    const port = await closedPort();
    const error = await new Promise<unknown>((resolve) => {
      const socket = net.connect({ host: 'localhost', port, autoSelectFamily: true, lookup: dualStackLookup });
      socket.once('error', resolve);
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
    });
    expect(error).toBeInstanceOf(AggregateError);
    expect(clientExitCode(error)).toBe(69);
  });

  it('calls other system errors 69 (sysexits’ catch-all) and an error without any code a bug of the client, 70', () => {
    expect(clientExitCode(errno('EMFILE'))).toBe(69);
    expect(clientExitCode(new TypeError('x is undefined'))).toBe(70);
    expect(clientExitCode('a string')).toBe(70);
  });

  it('prints the table in numeric order, one code a line', () => {
    const rows = formatClientExitCodes().split('\n').slice(1);
    expect(rows.map((r) => Number(r.trim().split(/\s+/)[0]))).toEqual(Object.keys(CLIENT_EXIT_MEANINGS).map(Number));
    expect(new Set(Object.values(CLIENT_EXIT))).toEqual(new Set(Object.keys(CLIENT_EXIT_MEANINGS).map(Number)));
  });
});

/** Answers localhost with both loopback addresses, IPv6 first, so that Node tries two attempts. */
function dualStackLookup(
  _host: string,
  options: dns.LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[] | string, family?: number) => void,
): void {
  const all = [
    { address: '::1', family: 6 },
    { address: '127.0.0.1', family: 4 },
  ];
  if (options.all) callback(null, all);
  else callback(null, '127.0.0.1', 4);
}
