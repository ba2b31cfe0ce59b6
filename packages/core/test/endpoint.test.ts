import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { prng } from '@net/test-support';
import { describe, expect, it } from 'vitest';
import { BadEndpointError, UnixPathTooLongError } from '../src/errors.js';
import {
  type Endpoint,
  formatEndpoint,
  formatPeer,
  normalizeAddress,
  parseEndpoint,
  toEndpoint,
  unixSocketPath,
} from '../src/net/endpoint.js';

const SEED = 0x5eed;
const CASES = 2_000;

function generator(seed: number) {
  const random = prng(seed);
  const int = (max: number) => Math.floor(random() * (max + 1));
  const pick = <T>(items: readonly T[]): T => items[int(items.length - 1)] as T;
  const port = () => pick([0, 1, 7, 13, 80, 443, 1023, 1024, 8080, 32767, 65535, int(65535)]);
  // Zero-heavy groups so that compressed forms ("::", runs in the middle, at both ends) come up often.
  const ipv6Words = () => Array.from({ length: 8 }, () => (random() < 0.5 ? 0 : pick([1, 0xff, 0xffff, int(0xffff)])));
  /** A non-canonical spelling: every group written out, random case and leading zeros. */
  const longSpelling = (words: number[]) =>
    words
      .map((w) => {
        const hex = w.toString(16).padStart(int(1) === 1 ? 4 : 1, '0');
        return random() < 0.5 ? hex.toUpperCase() : hex;
      })
      .join(':');
  const ipv4 = () => `${int(255)}.${int(255)}.${int(255)}.${int(255)}`;
  const label = () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-';
    const length = 1 + int(20);
    let s = pick([...'abcdefghijklmnopqrstuvwxyz0123456789']);
    for (let i = 1; i < length - 1; i++) s += pick([...alphabet]);
    if (length > 1) s += pick([...'abcdefghijklmnopqrstuvwxyz']);
    return s;
  };
  // The last label starts with a letter: RFC 1123 §2.1 keeps all-numeric names distinguishable from IPv4.
  const host = () => [...Array.from({ length: int(3) }, label), `x${label()}`].join('.');
  const unixName = (maxBytes: number) => {
    const length = 1 + int(maxBytes - 1);
    let s = '';
    for (let i = 0; i < length; i++) s += pick([...'abcdefghijklmnopqrstuvwxyz0123456789._-/']);
    return s;
  };
  return { random, int, pick, port, ipv6Words, longSpelling, ipv4, host, unixName };
}

/** An independent RFC 5952 serializer: the WHATWG URL parser's IPv6 host serialisation. */
function urlCanonical(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

describe('parseEndpoint and formatEndpoint', () => {
  it.each([
    ['127.0.0.1:7', { kind: 'ip', family: 4, address: '127.0.0.1', port: 7 }],
    ['[::1]:7', { kind: 'ip', family: 6, address: '::1', port: 7 }],
    ['[fe80::1%lo]:7', { kind: 'ip', family: 6, address: 'fe80::1', port: 7, scopeId: 'lo' }],
    ['[fe80::1%2]:7', { kind: 'ip', family: 6, address: 'fe80::1', port: 7, scopeId: '2' }],
    [':7', { kind: 'any', port: 7 }],
    ['localhost:7', { kind: 'host', host: 'localhost', port: 7 }],
    ['unix:/run/x.sock', { kind: 'unix', path: '/run/x.sock', abstract: false }],
    ['unix:@abstract', { kind: 'unix', path: 'abstract', abstract: true }],
    ['0.0.0.0:0', { kind: 'ip', family: 4, address: '0.0.0.0', port: 0 }],
    ['[::]:65535', { kind: 'ip', family: 6, address: '::', port: 65535 }],
  ] satisfies [string, Endpoint][])('parses %s into the typed model and formats it back unchanged', (input, model) => {
    expect(parseEndpoint(input)).toEqual(model);
    expect(formatEndpoint(parseEndpoint(input))).toBe(input);
  });

  it('round-trips thousands of generated canonical endpoints of every kind', () => {
    const g = generator(SEED);
    for (let i = 0; i < CASES; i++) {
      let input: string;
      switch (i % 6) {
        case 0:
          input = `${g.ipv4()}:${g.port()}`;
          break;
        case 1: {
          const address = urlCanonical(g.longSpelling(g.ipv6Words()));
          const scope = g.random() < 0.3 ? `%${g.pick(['lo', 'eth0', '2', 'wlp2s0', 'br-1.10'])}` : '';
          input = `[${address}${scope}]:${g.port()}`;
          break;
        }
        case 2:
          input = `:${g.port()}`;
          break;
        case 3:
          input = `${g.host()}:${g.port()}`;
          break;
        case 4:
          input = `unix:/${g.unixName(106)}`;
          break;
        default:
          input = `unix:@${g.unixName(107)}`;
      }
      const parsed = parseEndpoint(input);
      expect(formatEndpoint(parsed), `seed ${SEED} case ${i}: ${input}`).toBe(input);
      expect(parseEndpoint(formatEndpoint(parsed))).toEqual(parsed);
    }
  });

  it('canonicalises generated IPv6 spellings exactly like an independent RFC 5952 serializer', () => {
    const g = generator(SEED + 1);
    for (let i = 0; i < CASES; i++) {
      const words = g.ipv6Words();
      // IPv4-mapped addresses keep their dotted quad here (RFC 5952 §5), which URL serialises as hex: checked below.
      if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) continue;
      const spelled = g.longSpelling(words);
      const parsed = parseEndpoint(`[${spelled}]:7`);
      expect(parsed, `seed ${SEED + 1} case ${i}: ${spelled}`).toMatchObject({ address: urlCanonical(spelled) });
    }
  });

  it('keeps IPv4-mapped IPv6 addresses as IPv6 in dotted form, since binding them differs from binding IPv4', () => {
    expect(parseEndpoint('[::FFFF:7f00:1]:7')).toEqual({ kind: 'ip', family: 6, address: '::ffff:127.0.0.1', port: 7 });
  });

  it('reads a bare port as every interface', () => {
    expect(parseEndpoint('7000', {})).toEqual({ kind: 'any', port: 7000 });
  });

  it('takes defaultPort for a host, an IPv4 address, a bracketed or an unbracketed IPv6 address without port', () => {
    expect(parseEndpoint('localhost', { defaultPort: 7 })).toEqual({ kind: 'host', host: 'localhost', port: 7 });
    expect(parseEndpoint('127.0.0.1', { defaultPort: 7 })).toMatchObject({ address: '127.0.0.1', port: 7 });
    expect(parseEndpoint('[::1]', { defaultPort: 7 })).toMatchObject({ address: '::1', port: 7 });
    expect(parseEndpoint('::1', { defaultPort: 7 })).toEqual({ kind: 'ip', family: 6, address: '::1', port: 7 });
    expect(parseEndpoint('fe80::1%lo', { defaultPort: 7 })).toMatchObject({ address: 'fe80::1', scopeId: 'lo' });
  });

  it('accepts a fully qualified host name with its trailing dot', () => {
    expect(formatEndpoint(parseEndpoint('example.com.:7'))).toBe('example.com.:7');
  });

  it('rejects a port above 65535 with a message naming the input and the accepted range', () => {
    const parse = () => parseEndpoint('localhost:70000');
    expect(parse).toThrow(BadEndpointError);
    expect(parse).toThrow('invalid endpoint "localhost:70000": port 70000 out of range, expected 0-65535');
  });

  it.each([
    ['', 'empty endpoint'],
    [':', 'missing port'],
    ['localhost', 'missing port'],
    ['localhost:', 'missing port'],
    ['localhost:-1', 'not a decimal number'],
    ['localhost:7a', 'not a decimal number'],
    ['localhost: 7', 'not a decimal number'],
    ['127.0.0.1:99999999999999999999', 'out of range'],
    [':65536', 'out of range'],
    ['70000', 'out of range'],
    [':7:7', 'expected host:port'],
    ['::1:7', 'must be bracketed'],
    ['fe80::1%lo:7', 'must be bracketed'],
    ['[::1', 'missing "]"'],
    ['[::1]7', 'expected ":port"'],
    ['[127.0.0.1]:7', 'not an IPv6 address'],
    ['[::g]:7', 'not an IPv6 address'],
    ['[fe80::1%]:7', 'invalid IPv6 scope'],
    ['[fe80::1%a/b]:7', 'invalid IPv6 scope'],
    ['1.2.3.256:7', 'not a valid IPv4 address'],
    ['1.2.3:7', 'not a valid IPv4 address'],
    ['-bad.example:7', 'RFC 1123'],
    ['bad-.example:7', 'RFC 1123'],
    ['under_score.example:7', 'RFC 1123'],
    ['two..dots:7', 'RFC 1123'],
    [`${'a'.repeat(64)}.example:7`, 'RFC 1123'],
    [`${'a.'.repeat(127)}ab:7`, 'at most 253'],
    ['.:7', 'empty host'],
    ['/run/x.sock', 'a Unix socket is written "unix:/run/x.sock"'],
    ['1.2.3.example.0:7', 'last label cannot be all digits'],
    ['http://localhost:7', 'expected host:port'],
    ['unix:', 'empty Unix socket path'],
    ['unix:@', 'empty abstract socket name'],
    ['unix:/a\0b', 'NUL'],
  ])('rejects %j with NET_ERR_BAD_ENDPOINT saying %s', (input, reason) => {
    let caught: unknown;
    try {
      parseEndpoint(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BadEndpointError);
    expect(caught).toMatchObject({ code: 'NET_ERR_BAD_ENDPOINT', input });
    expect((caught as Error).message).toContain(reason);
  });

  it('rejects an out-of-range defaultPort', () => {
    expect(() => parseEndpoint('localhost', { defaultPort: 65536 })).toThrow(BadEndpointError);
  });

  it('accepts Unix paths and abstract names up to 107 bytes and refuses 108 with NET_ERR_UNIX_PATH_TOO_LONG', () => {
    const path107 = `/${'p'.repeat(106)}`;
    expect(parseEndpoint(`unix:${path107}`)).toEqual({ kind: 'unix', path: path107, abstract: false });
    expect(parseEndpoint(`unix:@${'n'.repeat(107)}`)).toMatchObject({ abstract: true });
    for (const input of [`unix:${path107}x`, `unix:@${'n'.repeat(108)}`]) {
      expect(() => parseEndpoint(input)).toThrow(UnixPathTooLongError);
      expect(() => parseEndpoint(input)).toThrow(
        expect.objectContaining({ code: 'NET_ERR_UNIX_PATH_TOO_LONG', bytes: 108 }),
      );
    }
  });

  it('counts Unix path length in UTF-8 bytes, not characters', () => {
    // 'é' is 2 bytes: 1 + 53 * 2 = 107 fits, one more character does not.
    expect(() => parseEndpoint(`unix:/${'é'.repeat(53)}`)).not.toThrow();
    expect(() => parseEndpoint(`unix:/${'é'.repeat(54)}`)).toThrow(UnixPathTooLongError);
  });

  it('validates hand-built endpoint objects with the same rules as strings', () => {
    expect(toEndpoint({ kind: 'ip', family: 6, address: '0:0::1', port: 7 })).toEqual({
      kind: 'ip',
      family: 6,
      address: '::1',
      port: 7,
    });
    expect(() => toEndpoint({ kind: 'ip', family: 4, address: '300.1.1.1', port: 7 })).toThrow(BadEndpointError);
    expect(() => toEndpoint({ kind: 'any', port: 65536 })).toThrow(BadEndpointError);
  });

  it('gives Node a leading NUL for abstract names and the plain path otherwise', () => {
    expect(unixSocketPath({ kind: 'unix', path: 'name', abstract: true })).toBe('\0name');
    expect(unixSocketPath({ kind: 'unix', path: '/run/x.sock', abstract: false })).toBe('/run/x.sock');
  });
});

describe('normalizeAddress', () => {
  it.each([
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:102:304', '1.2.3.4'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['2001:0:1:1:1:1:1:1', '2001:0:1:1:1:1:1:1'],
    ['FE80::0001%eth0', 'fe80::1%eth0'],
    ['::2:3', '::2:3'],
    ['127.0.0.1', '127.0.0.1'],
    ['localhost', 'localhost'],
    ['', ''],
  ])('normalises %j to %j', (input, expected) => {
    expect(normalizeAddress(input)).toBe(expected);
  });
});

describe('formatPeer', () => {
  async function peerSeenBy(listenOn: net.ListenOptions, connectTo: net.NetConnectOpts): Promise<string> {
    const server = net.createServer();
    server.listen(listenOn);
    await once(server, 'listening');
    const address = server.address();
    const options = typeof address === 'object' && address !== null ? { ...connectTo, port: address.port } : connectTo;
    const client = net.connect(options as net.NetConnectOpts);
    const [accepted] = (await once(server, 'connection')) as [net.Socket];
    const peer = formatPeer(accepted);
    accepted.destroy();
    client.destroy();
    server.close();
    return peer;
  }

  it('formats an IPv4 peer as addr:port', async () => {
    expect(await peerSeenBy({ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 })).toMatch(
      /^127\.0\.0\.1:\d+$/,
    );
  });

  it('formats an IPv6 peer as [addr]:port', async () => {
    expect(await peerSeenBy({ host: '::1', port: 0 }, { host: '::1', port: 0 })).toMatch(/^\[::1\]:\d+$/);
  });

  it('unmaps an IPv4 peer of a dual-stack listener', async () => {
    expect(await peerSeenBy({ host: '::', port: 0, ipv6Only: false }, { host: '127.0.0.1', port: 0 })).toMatch(
      /^127\.0\.0\.1:\d+$/,
    );
  });

  it('formats a Unix socket peer as unix', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'net-endpoint-'));
    const file = path.join(dir, 's.sock');
    try {
      expect(await peerSeenBy({ path: file }, { path: file })).toBe('unix');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
