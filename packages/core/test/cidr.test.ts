import { describe, expect, it } from 'vitest';
import { cidrContains, formatIp, ipToBytes, parseCidr, parseCidrList } from '../src/net/cidr.js';

describe('parseCidrList', () => {
  it('parses IPv4 and IPv6 networks separated by commas and spaces', () => {
    const list = parseCidrList('127.0.0.0/8, ::1/128  192.0.2.0/24');
    expect(list.map((c) => [c.family, c.prefix, formatIp(c.network)])).toEqual([
      [4, 8, '127.0.0.0'],
      [6, 128, '::1'],
      [4, 24, '192.0.2.0'],
    ]);
  });

  it('reads a bare address as a single host', () => {
    expect(parseCidr('192.0.2.7').prefix).toBe(32);
    expect(parseCidr('2001:db8::7').prefix).toBe(128);
  });

  it('gives an empty list for an empty or blank string', () => {
    expect(parseCidrList('')).toEqual([]);
    expect(parseCidrList(' , ')).toEqual([]);
  });

  for (const bad of [
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/',
    '10.0.0.0/08',
    '10.0.0/8',
    'example.com/8',
    '1.2.3.4/-1',
    'fe80::1%eth0/64',
    '256.0.0.0/8',
  ]) {
    it(`rejects "${bad}" with NET_ERR_BAD_CONFIG naming the input`, () => {
      expect(() => parseCidrList(`127.0.0.0/8,${bad}`, '--proxy-trusted')).toThrow(
        expect.objectContaining({
          code: 'NET_ERR_BAD_CONFIG',
          message: expect.stringContaining(`invalid --proxy-trusted "${bad}"`),
        }),
      );
    });
  }

  it('rejects a network with host bits set and suggests the network address', () => {
    expect(() => parseCidr('192.0.2.1/24')).toThrow(/did you mean 192\.0\.2\.0\/24/);
    expect(() => parseCidr('2001:db8::1/32')).toThrow(/did you mean 2001:db8::\/32/);
  });
});

describe('cidrContains', () => {
  const list = parseCidrList('127.0.0.0/8,::1/128,192.0.2.0/24,2001:db8:1::/48');

  it.each([
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['128.0.0.1', false],
    ['192.0.2.0', true],
    ['192.0.2.255', true],
    ['192.0.3.0', false],
    ['::1', true],
    ['::2', false],
    ['2001:db8:1:ffff::1', true],
    ['2001:db8:2::1', false],
    ['::ffff:127.0.0.1', true],
    ['::ffff:192.0.2.9', true],
    ['::ffff:10.0.0.1', false],
    ['fe80::1%eth0', false],
    ['not an address', false],
  ] as const)('%s -> %s', (address, expected) => {
    expect(cidrContains(list, address)).toBe(expected);
  });

  it('is false for an undefined address (a destroyed socket has no remoteAddress)', () => {
    expect(cidrContains(list, undefined)).toBe(false);
  });

  it('matches an IPv4 peer against a network written in the IPv4-mapped IPv6 form', () => {
    expect(cidrContains(parseCidrList('::ffff:10.0.0.0/104'), '10.1.2.3')).toBe(true);
    expect(cidrContains(parseCidrList('::ffff:10.0.0.0/104'), '11.1.2.3')).toBe(false);
  });

  it('compares IPv4 peers exactly as the general path does: /32, /31, /1 and odd prefixes, both ends of a network', () => {
    const odd = parseCidrList('198.51.100.7/32,203.0.113.128/25,0.0.0.0/1,192.0.2.64/26');
    for (const [address, expected] of [
      ['198.51.100.7', true],
      ['198.51.100.6', false],
      ['203.0.113.128', true],
      ['203.0.113.255', true],
      ['203.0.113.127', false],
      ['127.255.255.255', true],
      ['128.0.0.0', false],
      ['192.0.2.64', true],
      ['192.0.2.127', true],
      ['192.0.2.128', false],
      ['::ffff:203.0.113.200', true],
      ['::ffff:203.0.113.1', false],
    ] as const)
      expect(cidrContains(odd, address), address).toBe(expected);
  });

  it('takes only what net.isIPv4 takes for a dotted quad: no leading zeros, parts 0-255, four parts', () => {
    const all = parseCidrList('0.0.0.0/0');
    for (const address of [
      '127.0.0.01',
      '127.0.0.256',
      '127.0.0',
      '127.0.0.1.2',
      '127..0.1',
      '1234.0.0.1',
      ' 127.0.0.1',
    ])
      expect(cidrContains(all, address), address).toBe(false);
    expect(cidrContains(all, '0.0.0.0')).toBe(true);
    expect(cidrContains(all, '255.255.255.255')).toBe(true);
  });

  it('matches an IPv4 peer against a mapped network with a prefix shorter than the mapping (::/0, ::/80)', () => {
    expect(cidrContains(parseCidrList('::/0'), '192.0.2.1')).toBe(true);
    expect(cidrContains(parseCidrList('::/80'), '192.0.2.1')).toBe(true);
    expect(cidrContains(parseCidrList('::/96'), '192.0.2.1')).toBe(false);
  });

  it('matches everything with /0', () => {
    expect(cidrContains(parseCidrList('0.0.0.0/0'), '203.0.113.9')).toBe(true);
    expect(cidrContains(parseCidrList('::/0'), '2001:db8::1')).toBe(true);
  });
});

describe('ipToBytes and formatIp', () => {
  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['192.0.2.100', '192.0.2.100'],
  ])('%s formats as %s (RFC 5952)', (input, output) => {
    const bytes = ipToBytes(input);
    expect(bytes).toBeDefined();
    expect(formatIp(bytes as Buffer)).toBe(output);
  });

  it('round-trips through Node for 500 pseudo-random IPv6 addresses', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.alloc(16);
      for (let j = 0; j < 16; j++) bytes[j] = next() % 4 === 0 ? 0 : next() & 0xff;
      const text = formatIp(bytes);
      expect(ipToBytes(text)?.equals(bytes)).toBe(true);
    }
  });
});
