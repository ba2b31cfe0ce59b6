/**
 * IP networks in CIDR notation (RFC 4632, RFC 4291 §2.3), for lists of trusted peers such as the load balancers
 * allowed to send a PROXY protocol header. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack
 * listener reports for an IPv4 peer; RFC 4291 §2.5.5.2) match IPv4 networks, and IPv4 addresses match networks
 * written in the mapped form.
 */
import net from 'node:net';
import { ConfigError } from '../errors.js';
import { formatIpv6, ipv6Words } from './ipv6-text.js';

/** One parsed network: its address bytes with the host bits cleared, and the prefix length. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly network: Buffer;
  readonly prefix: number;
  /** The text it was parsed from, for logs. */
  readonly text: string;
}

const ACCEPTED =
  'expected an IPv4 or IPv6 network in CIDR notation, e.g. 10.0.0.0/8, 192.0.2.0/24 or ::1/128 (a bare address means one host)';

/** Parses `192.0.2.0/24`, `::1/128`, or a bare address (/32 or /128). Throws ConfigError naming `setting`. */
export function parseCidr(text: string, setting = 'CIDR'): Cidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addressText = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const network = ipToBytes(addressText);
  if (!network || addressText.includes('%')) throw new ConfigError(setting, text, ACCEPTED);
  const family = network.length === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const prefixText = trimmed.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      throw new ConfigError(setting, text, `prefix length must be 0-${max} for an IPv${family} network; ${ACCEPTED}`);
    }
    prefix = Number(prefixText);
  }
  const masked = maskBytes(network, prefix);
  if (!masked.equals(network)) {
    throw new ConfigError(setting, text, `host bits are set; did you mean ${formatIp(masked)}/${prefix}? ${ACCEPTED}`);
  }
  return { family, network: masked, prefix, text: trimmed };
}

/** Parses a list separated by commas and/or whitespace (`"127.0.0.0/8, ::1/128"`); an empty string is an empty list. */
export function parseCidrList(text: string, setting = 'CIDR'): Cidr[] {
  return text
    .split(/[\s,]+/)
    .filter((part) => part !== '')
    .map((part) => parseCidr(part, setting));
}

/** True when `address` (as `socket.remoteAddress` gives it; zone ids ignored) lies in one of the networks. */
export function cidrContains(list: readonly Cidr[], address: string | undefined): boolean {
  if (address === undefined) return false;
  // An IPv4 peer (the usual case, once per connection on a PROXY listener or with a source policy): compared as a
  // number, without the five Buffers the general path below builds (ipToBytes, mapV4, maskBytes per network):
  // those were 4 % of echo-tcp's samples in PROXY connection churn (bench:profile).
  const quad = ipv4Number(address);
  if (quad >= 0) {
    for (const cidr of list)
      if (cidr.family === 4 ? inV4Network(quad, cidr) : inV6NetworkMapped(quad, cidr)) return true;
    return false;
  }
  const bytes = ipToBytes(address.split('%')[0] ?? '');
  if (!bytes) return false;
  const v4 = bytes.length === 4 ? bytes : isMappedV4(bytes) ? bytes.subarray(12) : undefined;
  const v6 = bytes.length === 16 ? bytes : mapV4(bytes);
  for (const cidr of list) {
    const candidate = cidr.family === 4 ? v4 : v6;
    if (candidate && maskBytes(candidate, cidr.prefix).equals(cidr.network)) return true;
  }
  return false;
}

/**
 * A dotted quad, alone or after `::ffff:` (how a dual-stack listener reports an IPv4 peer, RFC 4291 §2.5.5.2), as an
 * unsigned 32-bit number; -1 for anything else (the caller then takes the general path). As strict as
 * `net.isIPv4`: four decimal parts of 0-255, no leading zeros.
 */
function ipv4Number(address: string): number {
  let i = address.startsWith('::ffff:') ? 7 : 0;
  let value = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (address.charCodeAt(i) !== 0x2e /* . */) return -1;
      i++;
    }
    const start = i;
    let n = 0;
    for (let digit = address.charCodeAt(i) - 0x30; digit >= 0 && digit <= 9; digit = address.charCodeAt(i) - 0x30) {
      n = n * 10 + digit;
      if (++i - start > 3) return -1;
    }
    if (i === start || n > 255 || (i - start > 1 && address.charCodeAt(start) === 0x30)) return -1;
    value = value * 256 + n;
  }
  return i === address.length ? value : -1;
}

/** Whether the IPv4 address `v4` (a number) lies in the IPv4 network `cidr`. */
function inV4Network(v4: number, cidr: Cidr): boolean {
  const n = cidr.network;
  const network = ((n[0] ?? 0) * 0x1000000 + (n[1] ?? 0) * 0x10000 + (n[2] ?? 0) * 0x100 + (n[3] ?? 0)) >>> 0;
  const mask = cidr.prefix === 0 ? 0 : (0xffffffff << (32 - cidr.prefix)) >>> 0;
  return (v4 & mask) >>> 0 === network;
}

/** Whether `v4` in its mapped form `::ffff:a.b.c.d` lies in the IPv6 network `cidr`, byte by byte. */
function inV6NetworkMapped(v4: number, cidr: Cidr): boolean {
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, cidr.prefix - i * 8));
    if (bits === 0) return true;
    const byte = i < 10 ? 0 : i < 12 ? 0xff : (v4 >>> (8 * (15 - i))) & 0xff;
    const mask = (0xff << (8 - bits)) & 0xff;
    if ((byte & mask) !== (cidr.network[i] ?? 0)) return false;
  }
  return true;
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address literal, or undefined if it is not one. */
export function ipToBytes(address: string): Buffer | undefined {
  const family = net.isIP(address);
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  if (family !== 6) return undefined;
  const zone = address.indexOf('%');
  const bytes = Buffer.alloc(16);
  ipv6Words(zone === -1 ? address : address.slice(0, zone)).forEach((word, i) => {
    bytes.writeUInt16BE(word, i * 2);
  });
  return bytes;
}

/** Text of 4 (dotted quad) or 16 bytes (RFC 5952: lower case, longest zero run as `::`, mapped IPv4 dotted). */
export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(bytes.readUInt16BE(i));
  return formatIpv6(words);
}

function isMappedV4(bytes: Buffer): boolean {
  if (bytes.length !== 16 || bytes[10] !== 0xff || bytes[11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return true;
}

function mapV4(v4: Buffer): Buffer {
  const bytes = Buffer.alloc(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  v4.copy(bytes, 12);
  return bytes;
}

function maskBytes(bytes: Buffer, prefix: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = (out[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}
