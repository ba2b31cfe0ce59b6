import net from 'node:net';
import { prng } from '@net/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyProtocolError } from '../src/errors.js';
import { parseCidrList } from '../src/net/cidr.js';
import {
  encodeProxyV1,
  encodeProxyV2,
  isTrustedProxy,
  PROXY_PROTOCOL_REASONS,
  PROXY_V2_TLV,
  type ProxyInfo,
  type ProxyParseResult,
  parseProxyHeader,
  type ReadProxyHeaderOptions,
  readProxyHeader,
} from '../src/proxy/proxy-protocol.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const SIG = '0d0a0d0a000d0a515549540a';
const HAPROXY_V2_TCP4 = hex(`${SIG} 21 11 000c c0000264 c0000202 ed1c 1b58`);
const HAPROXY_V2_LOCAL = hex(`${SIG} 20 00 0000`);
const NGINX_V1 = Buffer.from('PROXY TCP4 192.0.2.100 192.0.2.2 40684 7100\r\n');

function parsed(buf: Buffer): { info: ProxyInfo; headerLength: number } {
  const result = parseProxyHeader(buf);
  if ('needMore' in result) throw new Error('expected a complete header');
  return result;
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyProtocolError);
    expect((error as ProxyProtocolError).code).toBe('NET_ERR_PROXY_PROTOCOL');
    return (error as ProxyProtocolError).reason;
  }
  return 'no error';
}

describe('parseProxyHeader: test vectors', () => {
  it('parses the 28-byte v2 IPv4 header HAProxy sends', () => {
    expect(parsed(HAPROXY_V2_TCP4)).toEqual({
      info: {
        version: 2,
        command: 'PROXY',
        family: 'TCP4',
        source: { address: '192.0.2.100', port: 60700 },
        destination: { address: '192.0.2.2', port: 7000 },
        tlvs: [],
      },
      headerLength: 28,
    });
  });

  it("accepts HAProxy's 16-byte v2 LOCAL health-check header, without addresses", () => {
    expect(parsed(HAPROXY_V2_LOCAL)).toEqual({
      info: { version: 2, command: 'LOCAL', family: 'UNKNOWN' },
      headerLength: 16,
    });
  });

  it('parses the v1 line nginx sends', () => {
    expect(parsed(NGINX_V1)).toEqual({
      info: {
        version: 1,
        command: 'PROXY',
        family: 'TCP4',
        source: { address: '192.0.2.100', port: 40684 },
        destination: { address: '192.0.2.2', port: 7100 },
      },
      headerLength: NGINX_V1.length,
    });
  });

  it('answers needMore for every strict prefix of each vector', () => {
    for (const vector of [HAPROXY_V2_TCP4, HAPROXY_V2_LOCAL, NGINX_V1]) {
      for (let n = 0; n < vector.length; n++)
        expect(parseProxyHeader(vector.subarray(0, n))).toEqual({ needMore: true });
    }
  });

  it('reports the header length and leaves the payload after it alone', () => {
    const result = parsed(Buffer.concat([HAPROXY_V2_TCP4, Buffer.from('hello')]));
    expect(result.headerLength).toBe(28);
  });
});

describe('parseProxyHeader: v1', () => {
  it('parses TCP6 and writes addresses in RFC 5952 form', () => {
    expect(parsed(Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 0\r\n')).info).toEqual({
      version: 1,
      command: 'PROXY',
      family: 'TCP6',
      source: { address: '2001:db8::1', port: 65535 },
      destination: { address: '::1', port: 0 },
    });
  });

  it('parses UNKNOWN and ignores the rest of its line', () => {
    for (const line of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n', 'PROXY UNKNOWN whatever\r\n']) {
      expect(parsed(Buffer.from(line))).toEqual({
        info: { version: 1, command: 'PROXY', family: 'UNKNOWN' },
        headerLength: line.length,
      });
    }
  });

  it('accepts a line of exactly 107 bytes and refuses one without CRLF by byte 107 (CVE-2021-23351)', () => {
    // The spec's worst case (§2.1): UNKNOWN with two full-length IPv6 addresses and ports.
    const longest =
      'PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
    expect(longest.length).toBe(107);
    expect(parsed(Buffer.from(longest)).headerLength).toBe(107);
    const tcp6 = longest.replace('UNKNOWN', 'TCP6');
    expect(parsed(Buffer.from(tcp6)).info.destination).toEqual({
      address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      port: 65535,
    });
    const endless = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}`);
    expect(parseProxyHeader(endless.subarray(0, 106))).toEqual({ needMore: true });
    expect(reasonOf(() => parseProxyHeader(endless.subarray(0, 107)))).toBe('too_long');
    expect(reasonOf(() => parseProxyHeader(endless))).toBe('too_long');
  });

  it.each([
    ['GET / HTTP/1.1\r\n', 'bad_signature'],
    ['PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'bad_signature'],
    ['proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'bad_signature'],
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', 'bad_family'],
    ['PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', 'bad_family'],
    ['PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'bad_family'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', 'bad_address'],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', 'bad_address'],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', 'bad_address'],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', 'bad_address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', 'bad_address'],
  ])('rejects %j with reason %s', (line, reason) => {
    expect(reasonOf(() => parseProxyHeader(Buffer.from(line)))).toBe(reason);
  });

  it('rejects v1 when only v2 is allowed, and v2 when only v1 is', () => {
    expect(reasonOf(() => parseProxyHeader(NGINX_V1, { allowV1: false }))).toBe('bad_version');
    expect(reasonOf(() => parseProxyHeader(HAPROXY_V2_TCP4, { allowV2: false }))).toBe('bad_version');
  });
});

describe('parseProxyHeader: v2', () => {
  const tlvs = [
    { type: PROXY_V2_TLV.ALPN, value: Buffer.from('h2') },
    { type: PROXY_V2_TLV.AUTHORITY, value: Buffer.from('example.com') },
    { type: PROXY_V2_TLV.NOOP, value: Buffer.alloc(0) },
    { type: PROXY_V2_TLV.UNIQUE_ID, value: Buffer.from([1, 2, 3, 4]) },
  ];

  const cases: Array<[string, Omit<ProxyInfo, 'version'>, number]> = [
    [
      'TCP4',
      {
        command: 'PROXY',
        family: 'TCP4',
        source: { address: '192.0.2.1', port: 1 },
        destination: { address: '192.0.2.2', port: 65535 },
        tlvs,
      },
      16 + 12,
    ],
    [
      'TCP6',
      {
        command: 'PROXY',
        family: 'TCP6',
        source: { address: '2001:db8::1', port: 443 },
        destination: { address: '::ffff:192.0.2.1', port: 8443 },
        tlvs,
      },
      16 + 36,
    ],
    [
      'UDP4',
      {
        command: 'PROXY',
        family: 'UDP4',
        source: { address: '10.0.0.1', port: 53 },
        destination: { address: '10.0.0.2', port: 5353 },
        tlvs: [],
      },
      16 + 12,
    ],
    [
      'UDP6',
      {
        command: 'PROXY',
        family: 'UDP6',
        source: { address: '::1', port: 53 },
        destination: { address: '::2', port: 5353 },
        tlvs: [],
      },
      16 + 36,
    ],
    [
      'UNIX',
      {
        command: 'PROXY',
        family: 'UNIX',
        source: { address: '/run/client.sock', port: 0 },
        destination: { address: '@abstract', port: 0 },
        tlvs,
      },
      16 + 216,
    ],
    ['UNKNOWN', { command: 'PROXY', family: 'UNKNOWN', tlvs }, 16],
  ];
  for (const [label, info, fixedPart] of cases) {
    it(`round-trips ${label} with ${info.tlvs?.length ?? 0} TLVs through encodeProxyV2`, () => {
      const bytes = encodeProxyV2(info);
      const tlvBytes = (info.tlvs ?? []).reduce((sum, t) => sum + 3 + t.value.length, 0);
      expect(bytes.length).toBe(fixedPart + tlvBytes);
      expect(parsed(bytes)).toEqual({ info: { version: 2, ...info }, headerLength: bytes.length });
    });
  }

  it('encodes LOCAL as the 16 bytes HAProxy sends', () => {
    expect(encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' }).equals(HAPROXY_V2_LOCAL)).toBe(true);
  });

  it('accepts LOCAL with any family and a block, and discards the block', () => {
    const local = Buffer.from(HAPROXY_V2_TCP4);
    local[12] = 0x20;
    expect(parsed(local)).toEqual({ info: { version: 2, command: 'LOCAL', family: 'UNKNOWN' }, headerLength: 28 });
  });

  it('reproduces the HAProxy IPv4 vector byte for byte', () => {
    const info = parsed(HAPROXY_V2_TCP4).info;
    expect(encodeProxyV2(info).equals(HAPROXY_V2_TCP4)).toBe(true);
    expect(encodeProxyV1(info).toString()).toBe('PROXY TCP4 192.0.2.100 192.0.2.2 60700 7000\r\n');
  });

  it('refuses truncated address data with bad_length (CVE-2019-14243)', () => {
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 12 0000`)))).toBe('bad_length');
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 11 000b c0000264 c0000202 ed1c 1b`)))).toBe('bad_length');
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 21 000c ${'00'.repeat(12)}`)))).toBe('bad_length');
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 31 00d7 ${'00'.repeat(215)}`)))).toBe('bad_length');
  });

  it('refuses TLVs that overrun the block with bad_length', () => {
    const withTlv = encodeProxyV2({ ...parsed(HAPROXY_V2_TCP4).info, tlvs: [{ type: 1, value: Buffer.from('abc') }] });
    const broken = Buffer.from(withTlv);
    broken.writeUInt16BE(4, 28 + 1); // TLV claims 4 bytes, 3 follow
    expect(reasonOf(() => parseProxyHeader(broken))).toBe('bad_length');
    const stray = Buffer.concat([HAPROXY_V2_TCP4, Buffer.from([1, 0])]);
    stray.writeUInt16BE(14, 14);
    expect(reasonOf(() => parseProxyHeader(stray))).toBe('bad_length');
  });

  it.each([
    [`${SIG} 11 11 000c`, 'bad_version'],
    [`${SIG} 31 11 000c`, 'bad_version'],
    [`${SIG} 22 11 000c`, 'bad_command'],
    [`${SIG} 2f 11 000c`, 'bad_command'],
    [`${SIG} 21 13 000c`, 'bad_family'],
    [`${SIG} 21 10 000c`, 'bad_family'],
    [`${SIG} 21 41 000c`, 'bad_family'],
    [`${SIG} 21 01 000c`, 'bad_family'],
    ['0d0a0d0a000d0a515549540b 21 11 000c', 'bad_signature'],
    ['0d0a0d0b', 'bad_signature'],
    ['00', 'bad_signature'],
    ['16030100', 'bad_signature'],
  ])('rejects %s with reason %s as soon as the bytes show it', (bytes, reason) => {
    expect(reasonOf(() => parseProxyHeader(hex(bytes)))).toBe(reason);
  });

  it('rejects version and command from byte 13 without waiting for the rest of the fixed part', () => {
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 11`)))).toBe('bad_version');
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 23`)))).toBe('bad_command');
  });

  it('refuses a header longer than maxHeaderBytes from its 16-byte fixed part', () => {
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 11 ffff`)))).toBe('too_long');
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 11 03f1`)))).toBe('too_long'); // 16 + 1009 = 1025
    expect(parseProxyHeader(hex(`${SIG} 21 11 03f0`))).toEqual({ needMore: true }); // 1024
    expect(reasonOf(() => parseProxyHeader(hex(`${SIG} 21 11 0020`), { maxHeaderBytes: 40 }))).toBe('too_long');
    expect(parseProxyHeader(hex(`${SIG} 21 11 ffff`), { maxHeaderBytes: 16 + 65535 })).toEqual({ needMore: true });
  });

  it('throws a ConfigError for a maxHeaderBytes outside 16..65551', () => {
    expect(() => parseProxyHeader(HAPROXY_V2_LOCAL, { maxHeaderBytes: 15 })).toThrow(
      expect.objectContaining({ code: 'NET_ERR_BAD_CONFIG' }),
    );
  });
});

describe('PROXY_PROTOCOL_REASONS', () => {
  it('lists the ten stable reason labels', () => {
    expect([...PROXY_PROTOCOL_REASONS].sort()).toEqual([
      'bad_address',
      'bad_command',
      'bad_family',
      'bad_length',
      'bad_signature',
      'bad_version',
      'closed',
      'timeout',
      'too_long',
      'truncated',
    ]);
  });
});

describe('parseProxyHeader: fuzz', () => {
  it('on 10,000 mutated and truncated headers throws only ProxyProtocolError and never claims more than the input', () => {
    const random = prng(0x5eed1234);
    const int = (n: number) => Math.floor(random() * n);
    const seeds = [
      HAPROXY_V2_TCP4,
      HAPROXY_V2_LOCAL,
      NGINX_V1,
      Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 2\r\n'),
      Buffer.from('PROXY UNKNOWN\r\n'),
      encodeProxyV2({
        command: 'PROXY',
        family: 'TCP6',
        source: { address: '::1', port: 1 },
        destination: { address: '::2', port: 2 },
        tlvs: [{ type: 5, value: Buffer.from('id') }],
      }),
      encodeProxyV2({
        command: 'PROXY',
        family: 'UNIX',
        source: { address: '/a', port: 0 },
        destination: { address: '/b', port: 0 },
      }),
    ];
    const reasons = new Set<string>(PROXY_PROTOCOL_REASONS);
    const seen = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      let buf = Buffer.from(seeds[int(seeds.length)] as Buffer);
      const mutations = 1 + int(4);
      for (let m = 0; m < mutations; m++) {
        switch (int(6)) {
          case 0: // flip a byte
            if (buf.length) buf[int(buf.length)] = int(256);
            break;
          case 1: // truncate
            buf = buf.subarray(0, int(buf.length + 1));
            break;
          case 2: // insert random bytes
            {
              const at = int(buf.length + 1);
              const extra = Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256)));
              buf = Buffer.concat([buf.subarray(0, at), extra, buf.subarray(at)]);
            }
            break;
          case 3: // random v2 length field
            if (buf.length >= 16) buf.writeUInt16BE(int(0x10000), 14);
            break;
          case 4: // append payload
            buf = Buffer.concat([buf, Buffer.alloc(int(300), int(256))]);
            break;
          case 5: // a CR or LF somewhere
            if (buf.length) buf[int(buf.length)] = int(2) ? 0x0d : 0x0a;
            break;
        }
      }
      let result: ProxyParseResult | undefined;
      try {
        result = parseProxyHeader(buf);
      } catch (error) {
        if (!(error instanceof ProxyProtocolError) || !reasons.has(error.reason)) {
          throw new Error(`iteration ${i}, input ${buf.toString('hex')}: unexpected ${String(error)}`);
        }
        seen.set(error.reason, (seen.get(error.reason) ?? 0) + 1);
        continue;
      }
      if ('needMore' in result) {
        seen.set('needMore', (seen.get('needMore') ?? 0) + 1);
        continue;
      }
      seen.set('ok', (seen.get('ok') ?? 0) + 1);
      expect(result.headerLength).toBeGreaterThan(0);
      if (result.headerLength > buf.length)
        throw new Error(`iteration ${i}: headerLength ${result.headerLength} > ${buf.length}`);
      // The header alone parses to the same thing.
      expect(parseProxyHeader(buf.subarray(0, result.headerLength))).toEqual(result);
    }
    // The mutations reach both outcomes and most reasons.
    expect(seen.get('ok')).toBeGreaterThan(100);
    expect(seen.size).toBeGreaterThanOrEqual(8);
  });
});

describe('readProxyHeader over a real socket', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /**
   * Starts a server that reads a header from each connection, then collects the rest of the stream. Resolves with
   * the header (or the error) and the payload that followed.
   */
  async function serve(opts: ReadProxyHeaderOptions): Promise<{
    port: number;
    next: () => Promise<{ info?: ProxyInfo; error?: ProxyProtocolError; payload: Promise<Buffer>; socket: net.Socket }>;
  }> {
    const results: Array<
      Promise<{ info?: ProxyInfo; error?: ProxyProtocolError; payload: Promise<Buffer>; socket: net.Socket }>
    > = [];
    let notify: (() => void) | undefined;
    const server = net.createServer((socket) => {
      results.push(
        readProxyHeader(socket, opts).then(
          (info) => {
            // Attached after the header resolved, as a service would.
            const chunks: Buffer[] = [];
            const payload = new Promise<Buffer>((resolve) => {
              socket.on('data', (chunk: Buffer) => chunks.push(chunk));
              socket.on('end', () => {
                resolve(Buffer.concat(chunks));
                socket.end();
              });
            });
            return { info, payload, socket };
          },
          (error: ProxyProtocolError) => {
            socket.destroy();
            return { error, payload: Promise.resolve(Buffer.alloc(0)), socket };
          },
        ),
      );
      notify?.();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    let taken = 0;
    const next = async () => {
      for (let i = 0; i < 1000 && results.length <= taken; i++) {
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 10);
        });
      }
      const result = results[taken++];
      if (!result) throw new Error('no connection arrived');
      return result;
    };
    return { port: (server.address() as net.AddressInfo).port, next };
  }

  async function client(port: number): Promise<net.Socket> {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    cleanups.push(async () => {
      socket.destroy();
    });
    return socket;
  }

  const write = (socket: net.Socket, bytes: Buffer) =>
    new Promise<void>((resolve, reject) => socket.write(bytes, (error) => (error ? reject(error) : resolve())));

  it('keeps the payload that arrives in the same chunk as the header, byte for byte', async () => {
    const { port, next } = await serve({ timeoutMs: 2000 });
    const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    for (const header of [HAPROXY_V2_TCP4, NGINX_V1, HAPROXY_V2_LOCAL]) {
      const socket = await client(port);
      socket.end(Buffer.concat([header, payload]));
      const result = await next();
      expect(result.error).toBeUndefined();
      expect(result.info?.version).toBe(header === NGINX_V1 ? 1 : 2);
      expect((await result.payload).equals(payload)).toBe(true);
    }
  });

  it('reads headers delivered one byte at a time, then the payload', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const header of [HAPROXY_V2_TCP4, NGINX_V1]) {
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const socket = await client((server.address() as net.AddressInfo).port);
      const peer = await accepted;
      // Count the reads the parser makes, to show the bytes really came one by one.
      let reads = 0;
      const read = peer.read.bind(peer);
      peer.read = (size?: number) => {
        const chunk = read(size);
        if (chunk !== null) reads++;
        return chunk;
      };
      const header$ = readProxyHeader(peer, { timeoutMs: 5000 });
      for (const byte of header) {
        const before = peer.bytesRead;
        await write(socket, Buffer.from([byte]));
        for (let i = 0; i < 200 && peer.bytesRead === before; i++)
          await new Promise((resolve) => setTimeout(resolve, 1));
      }
      socket.end('ping\n');
      const info = await header$;
      expect(reads).toBeGreaterThan(header.length / 2);
      expect(info.source).toEqual(
        header === NGINX_V1 ? { address: '192.0.2.100', port: 40684 } : { address: '192.0.2.100', port: 60700 },
      );
      const chunks: Buffer[] = [];
      for await (const chunk of peer) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('ping\n');
      peer.destroy();
    }
  });

  it('gives every byte back when the stream is read with for await after the header', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const socket = await client((server.address() as net.AddressInfo).port);
    socket.end(Buffer.concat([NGINX_V1, Buffer.from('abc')]));
    const peer = await accepted;
    expect((await readProxyHeader(peer, { timeoutMs: 2000 })).family).toBe('TCP4');
    const chunks: Buffer[] = [];
    for await (const chunk of peer) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('abc');
  });

  it('rejects with timeout when no complete header arrives in time (CVE-2021-23409)', async () => {
    const { port, next } = await serve({ timeoutMs: 150 });
    const silent = await client(port);
    const started = Date.now();
    const first = await next();
    expect(first.error?.reason).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(silent.destroyed).toBe(false);

    const partial = await client(port);
    await write(partial, HAPROXY_V2_TCP4.subarray(0, 20));
    const second = await next();
    expect(second.error?.reason).toBe('timeout');
    expect(second.error?.message).toContain('20 bytes received');
  });

  it('rejects at once, without waiting for the timeout, a v2 header announcing more than maxHeaderBytes', async () => {
    const { port, next } = await serve({ timeoutMs: 10_000, maxHeaderBytes: 64 });
    const socket = await client(port);
    await write(socket, hex(`${SIG} 21 11 0100`));
    const started = Date.now();
    const result = await next();
    expect(result.error?.reason).toBe('too_long');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('rejects an endless v1 line at 107 bytes (CVE-2021-23351)', async () => {
    const { port, next } = await serve({ timeoutMs: 10_000 });
    const socket = await client(port);
    socket.on('error', () => {});
    await write(socket, Buffer.from(`PROXY TCP4 ${'1'.repeat(2000)}`));
    const result = await next();
    expect(result.error?.reason).toBe('too_long');
  });

  it('rejects with closed when the peer ends before any byte, truncated after some', async () => {
    const { port, next } = await serve({ timeoutMs: 5000 });
    (await client(port)).end();
    expect((await next()).error?.reason).toBe('closed');
    (await client(port)).end(NGINX_V1.subarray(0, 10));
    const truncated = await next();
    expect(truncated.error?.reason).toBe('truncated');
    expect(truncated.error?.message).toContain('10 bytes');
  });

  it('rejects a non-PROXY protocol with bad_signature', async () => {
    const { port, next } = await serve({ timeoutMs: 5000 });
    const socket = await client(port);
    await write(socket, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    expect((await next()).error?.reason).toBe('bad_signature');
  });

  it('rejects with closed for a socket already destroyed', async () => {
    const socket = new net.Socket();
    socket.destroy();
    await expect(readProxyHeader(socket, { timeoutMs: 100 })).rejects.toMatchObject({ reason: 'closed' });
  });

  it('refuses to start without a positive timeout', () => {
    expect(() => readProxyHeader(new net.Socket(), { timeoutMs: 0 })).toThrow(
      expect.objectContaining({ code: 'NET_ERR_BAD_CONFIG' }),
    );
  });

  it('trusts a loopback peer only when loopback is in the list', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await client((server.address() as net.AddressInfo).port);
    const peer = await accepted;
    cleanups.push(async () => {
      peer.destroy();
    });
    expect(isTrustedProxy(peer, parseCidrList('127.0.0.0/8'))).toBe(true);
    expect(isTrustedProxy(peer, parseCidrList('192.0.2.0/24,::1/128'))).toBe(false);
  });
});

describe('encodeProxyV1', () => {
  it('encodes TCP6 and UNKNOWN', () => {
    expect(
      encodeProxyV1({
        family: 'TCP6',
        source: { address: '::1', port: 1 },
        destination: { address: '2001:db8::2', port: 2 },
      }).toString(),
    ).toBe('PROXY TCP6 ::1 2001:db8::2 1 2\r\n');
    expect(encodeProxyV1({ family: 'UNKNOWN' }).toString()).toBe('PROXY UNKNOWN\r\n');
  });

  it('refuses families v1 cannot carry and bad addresses', () => {
    expect(reasonOf(() => encodeProxyV1({ family: 'UDP4' }))).toBe('bad_family');
    expect(
      reasonOf(() =>
        encodeProxyV1({
          family: 'TCP4',
          source: { address: '::1', port: 1 },
          destination: { address: '1.2.3.4', port: 2 },
        }),
      ),
    ).toBe('bad_address');
  });
});
