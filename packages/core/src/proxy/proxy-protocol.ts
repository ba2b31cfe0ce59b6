/**
 * PROXY protocol v1 (text) and v2 (binary), receiver side, after HAProxy's specification
 * (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, "the spec" below).
 *
 * `parseProxyHeader` is a pure function over the bytes received so far: it answers "need more", a header and its
 * length, or throws ProxyProtocolError. It decides as early as the bytes allow, so a reader never buffers more than
 * the limits: a v1 line is at most 107 bytes including CRLF (spec §2.1), a v2 header at most `maxHeaderBytes`
 * (16 + the length field, refused from the 16-byte fixed part alone). `readProxyHeader` drives it from a socket,
 * with a mandatory timeout, and gives the bytes after the header back to the stream untouched.
 *
 * Accept a header only from trusted peers (see cidr.ts): a header from anyone lets anyone choose the address logged
 * and rate-limited (haproxy issue 2450, caddy PR 5915).
 */
import net from 'node:net';
import { ConfigError, ProxyProtocolError } from '../errors.js';
import type { Cidr } from '../net/cidr.js';
import { cidrContains, formatIp, ipToBytes } from '../net/cidr.js';

/** Every `reason` a ProxyProtocolError carries; stable, for metric labels. */
export const PROXY_PROTOCOL_REASONS = [
  'timeout',
  'bad_signature',
  'truncated',
  'too_long',
  'bad_version',
  'bad_command',
  'bad_family',
  'bad_address',
  'bad_length',
  'closed',
] as const;
export type ProxyProtocolReason = (typeof PROXY_PROTOCOL_REASONS)[number];

export type ProxyFamily = 'TCP4' | 'TCP6' | 'UNIX' | 'UNKNOWN' | 'UDP4' | 'UDP6';

export interface ProxyAddress {
  /** IP address text (IPv6 in RFC 5952 form), or a Unix socket path (`@name` for an abstract one). */
  address: string;
  /** 0..65535; 0 for UNIX. */
  port: number;
}

export interface ProxyTlv {
  type: number;
  value: Buffer;
}

/** What a PROXY header says. `command` LOCAL (v2 health checks) carries no addresses: use the socket's own. */
export interface ProxyInfo {
  version: 1 | 2;
  command: 'PROXY' | 'LOCAL';
  family: ProxyFamily;
  source?: ProxyAddress;
  destination?: ProxyAddress;
  /** v2 PROXY only: the type-length-value records after the addresses (spec §2.2.7). */
  tlvs?: ProxyTlv[];
}

/** v2 TLV types of the spec §2.2.7. */
export const PROXY_V2_TLV = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

export interface ProxyParseOptions {
  /** Largest v2 header accepted, 16-byte fixed part included; 16..65551, default 1024. */
  maxHeaderBytes?: number;
  /** Accept the text format (default true). */
  allowV1?: boolean;
  /** Accept the binary format (default true). */
  allowV2?: boolean;
}

export interface ReadProxyHeaderOptions extends ProxyParseOptions {
  /** Time for the whole header to arrive, from the call (CVE-2021-23409: a reader without one is a slowloris). */
  timeoutMs: number;
}

export type ProxyParseResult = { info: ProxyInfo; headerLength: number } | { needMore: true };

/** A v1 line is at most 107 bytes including CRLF (spec §2.1). */
export const PROXY_V1_MAX_BYTES = 107;
/** The v2 fixed part: 12-byte signature, version/command, family/transport, 16-bit length (spec §2.2). */
export const PROXY_V2_FIXED_BYTES = 16;
export const PROXY_V2_DEFAULT_MAX_BYTES = 1024;
const PROXY_V2_ABSOLUTE_MAX_BYTES = PROXY_V2_FIXED_BYTES + 0xffff;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const NEED_MORE: { needMore: true } = Object.freeze({ needMore: true });

// v2 byte 14: address family (high nibble) and transport (low nibble); the only valid pairs (spec §2.2).
const V2_FAMILIES = new Map<number, { family: ProxyFamily; addressBytes: number }>([
  [0x00, { family: 'UNKNOWN', addressBytes: 0 }],
  [0x11, { family: 'TCP4', addressBytes: 12 }],
  [0x12, { family: 'UDP4', addressBytes: 12 }],
  [0x21, { family: 'TCP6', addressBytes: 36 }],
  [0x22, { family: 'UDP6', addressBytes: 36 }],
  [0x31, { family: 'UNIX', addressBytes: 216 }],
  [0x32, { family: 'UNIX', addressBytes: 216 }],
]);

function fail(reason: ProxyProtocolReason, message: string): never {
  throw new ProxyProtocolError(reason, message);
}

/**
 * Parses a PROXY header at the start of `buf` (the bytes received so far). Returns `{ needMore: true }` while the
 * bytes are a valid beginning, `{ info, headerLength }` once complete (bytes after `headerLength` are payload), and
 * throws ProxyProtocolError as soon as they cannot be one. Never reads past the limits, whatever `buf` holds.
 */
export function parseProxyHeader(buf: Buffer, opts: ProxyParseOptions = {}): ProxyParseResult {
  const maxHeaderBytes = validateMaxHeaderBytes(opts.maxHeaderBytes);
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === V1_PREFIX[0]) {
    if (opts.allowV1 === false) fail('bad_version', 'a v1 (text) header was received and only v2 is accepted');
    return parseV1(buf);
  }
  if (buf[0] === V2_SIGNATURE[0]) {
    if (opts.allowV2 === false) fail('bad_version', 'a v2 (binary) header was received and only v1 is accepted');
    return parseV2(buf, maxHeaderBytes);
  }
  return fail('bad_signature', `first byte 0x${hex(buf[0])} starts neither a v1 nor a v2 header`);
}

function parseV1(buf: Buffer): ProxyParseResult {
  const prefixBytes = Math.min(buf.length, V1_PREFIX.length);
  if (buf.compare(V1_PREFIX, 0, prefixBytes, 0, prefixBytes) !== 0) {
    fail('bad_signature', 'the first bytes are not "PROXY " (v1) nor the v2 signature');
  }
  const window = buf.subarray(0, PROXY_V1_MAX_BYTES);
  const lf = window.indexOf(0x0a);
  if (lf === -1) {
    // CVE-2021-23351: a line without CRLF is refused at the limit, not read without bound.
    if (window.length >= PROXY_V1_MAX_BYTES) {
      fail('too_long', `no CRLF within the first ${PROXY_V1_MAX_BYTES} bytes of a v1 header`);
    }
    return NEED_MORE;
  }
  if (lf < V1_PREFIX.length || window[lf - 1] !== 0x0d) fail('bad_address', 'a v1 line must end with CRLF');
  const line = window.toString('latin1', V1_PREFIX.length, lf - 1);
  const headerLength = lf + 1;
  const fields = line.split(' ');
  const protocol = fields[0];
  if (protocol === 'UNKNOWN') {
    // Spec §2.1: after UNKNOWN the receiver ignores the rest of the line and uses the real connection's addresses.
    return { info: { version: 1, command: 'PROXY', family: 'UNKNOWN' }, headerLength };
  }
  if (protocol !== 'TCP4' && protocol !== 'TCP6') {
    fail('bad_family', `v1 protocol "${printable(protocol ?? '')}" is none of TCP4, TCP6, UNKNOWN`);
  }
  if (fields.length !== 5) {
    fail('bad_address', `a v1 ${protocol} line has 4 fields after the protocol separated by single spaces`);
  }
  const [, sourceText = '', destinationText = '', sourcePort = '', destinationPort = ''] = fields;
  const ipFamily = protocol === 'TCP4' ? 4 : 6;
  for (const address of [sourceText, destinationText]) {
    if (net.isIP(address) !== ipFamily || address.includes('%')) {
      fail('bad_address', `"${printable(address)}" is not an IPv${ipFamily} address`);
    }
  }
  return {
    info: {
      version: 1,
      command: 'PROXY',
      family: protocol,
      source: { address: canonicalIp(sourceText), port: parseV1Port(sourcePort) },
      destination: { address: canonicalIp(destinationText), port: parseV1Port(destinationPort) },
    },
    headerLength,
  };
}

function parseV1Port(text: string): number {
  // Spec §2.1: decimal 0..65535, no leading zero.
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) {
    fail('bad_address', `v1 port "${printable(text)}" is not a decimal number in 0..65535`);
  }
  return Number(text);
}

function parseV2(buf: Buffer, maxHeaderBytes: number): ProxyParseResult {
  const signatureBytes = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.compare(V2_SIGNATURE, 0, signatureBytes, 0, signatureBytes) !== 0) {
    fail('bad_signature', 'the first bytes are not the v2 signature nor "PROXY " (v1)');
  }
  if (buf.length < PROXY_V2_FIXED_BYTES) {
    // Check version and command as soon as byte 13 is in, so a wrong one fails without waiting for more.
    if (buf.length > 12) checkVersionCommand(buf[12] ?? 0);
    return NEED_MORE;
  }
  const command = checkVersionCommand(buf[12] ?? 0);
  const familyByte = buf[13] ?? 0;
  const length = buf.readUInt16BE(14);
  const headerLength = PROXY_V2_FIXED_BYTES + length;
  if (headerLength > maxHeaderBytes) {
    fail('too_long', `v2 header announces ${headerLength} bytes, more than the ${maxHeaderBytes} accepted`);
  }
  // Spec §2.2: with LOCAL the receiver discards the block, family included, and uses the real connection.
  const family = command === 'LOCAL' ? V2_FAMILIES.get(0) : V2_FAMILIES.get(familyByte);
  if (!family) fail('bad_family', `v2 family/transport byte 0x${hex(familyByte)} is not a valid pair`);
  // CVE-2019-14243: a length too short for the family's addresses is refused before anything is read from them.
  if (length < family.addressBytes) {
    fail('bad_length', `v2 ${family.family} needs ${family.addressBytes} address bytes, the header has ${length}`);
  }
  if (buf.length < headerLength) return NEED_MORE;
  if (command === 'LOCAL') return { info: { version: 2, command: 'LOCAL', family: 'UNKNOWN' }, headerLength };

  const block = buf.subarray(PROXY_V2_FIXED_BYTES, headerLength);
  const info: ProxyInfo = { version: 2, command: 'PROXY', family: family.family };
  switch (family.addressBytes) {
    case 12:
      info.source = { address: formatIp(block.subarray(0, 4)), port: block.readUInt16BE(8) };
      info.destination = { address: formatIp(block.subarray(4, 8)), port: block.readUInt16BE(10) };
      break;
    case 36:
      info.source = { address: formatIp(block.subarray(0, 16)), port: block.readUInt16BE(32) };
      info.destination = { address: formatIp(block.subarray(16, 32)), port: block.readUInt16BE(34) };
      break;
    case 216:
      info.source = { address: unixPath(block.subarray(0, 108)), port: 0 };
      info.destination = { address: unixPath(block.subarray(108, 216)), port: 0 };
      break;
  }
  info.tlvs = parseTlvs(block.subarray(family.addressBytes));
  return { info, headerLength };
}

function checkVersionCommand(byte: number): 'PROXY' | 'LOCAL' {
  if (byte >> 4 !== 2) fail('bad_version', `v2 version nibble is ${byte >> 4}, expected 2`);
  const command = byte & 0x0f;
  if (command === 0) return 'LOCAL';
  if (command === 1) return 'PROXY';
  return fail('bad_command', `v2 command nibble is ${command}, expected 0 (LOCAL) or 1 (PROXY)`);
}

function parseTlvs(bytes: Buffer): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 3)
      fail('bad_length', `${bytes.length - offset} stray bytes where a TLV (3+) should be`);
    const type = bytes[offset] ?? 0;
    const length = bytes.readUInt16BE(offset + 1);
    if (offset + 3 + length > bytes.length) {
      fail('bad_length', `TLV 0x${hex(type)} announces ${length} bytes, ${bytes.length - offset - 3} remain`);
    }
    // A copy: the TLV must not keep the socket's receive chunk alive.
    tlvs.push({ type, value: Buffer.from(bytes.subarray(offset + 3, offset + 3 + length)) });
    offset += 3 + length;
  }
  return tlvs;
}

function unixPath(bytes: Buffer): string {
  // sun_path: NUL-terminated; a leading NUL marks a Linux abstract name, shown `@name` as ss(8) does.
  if (bytes[0] === 0) {
    const end = bytes.indexOf(0, 1);
    return `@${bytes.toString('utf8', 1, end === -1 ? bytes.length : end)}`;
  }
  const end = bytes.indexOf(0);
  return bytes.toString('utf8', 0, end === -1 ? bytes.length : end);
}

function validateMaxHeaderBytes(value: number | undefined): number {
  if (value === undefined) return PROXY_V2_DEFAULT_MAX_BYTES;
  if (!Number.isInteger(value) || value < PROXY_V2_FIXED_BYTES || value > PROXY_V2_ABSOLUTE_MAX_BYTES) {
    throw new ConfigError(
      'PROXY maxHeaderBytes',
      String(value),
      `expected an integer in ${PROXY_V2_FIXED_BYTES}..${PROXY_V2_ABSOLUTE_MAX_BYTES}`,
    );
  }
  return value;
}

function canonicalIp(text: string): string {
  const bytes = ipToBytes(text);
  return bytes ? formatIp(bytes) : text;
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, '0');
}

/** Untrusted text for an error message: control and non-ASCII bytes escaped, length capped. */
function printable(text: string): string {
  const escaped = text.replace(/[^\x20-\x7e]/g, (c) => `\\x${hex(c.charCodeAt(0) & 0xff)}`);
  return escaped.length > 48 ? `${escaped.slice(0, 48)}...` : escaped;
}

/**
 * Reads a PROXY header from the start of `socket`. Resolves with it once complete, and puts any bytes that came after
 * it back at the front of the stream (`unshift`), so the protocol handler reads them as if no header had been there;
 * attach it after this resolves. Rejects with ProxyProtocolError (`reason` one of PROXY_PROTOCOL_REASONS); the socket
 * is left open: the caller logs, counts and destroys it.
 */
export function readProxyHeader(socket: net.Socket, opts: ReadProxyHeaderOptions): Promise<ProxyInfo> {
  const { timeoutMs } = opts;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) {
    throw new ConfigError('PROXY header timeout', String(timeoutMs), 'expected a whole number of milliseconds > 0');
  }
  const parseOptions: ProxyParseOptions = { maxHeaderBytes: validateMaxHeaderBytes(opts.maxHeaderBytes) };
  if (opts.allowV1 !== undefined) parseOptions.allowV1 = opts.allowV1;
  if (opts.allowV2 !== undefined) parseOptions.allowV2 = opts.allowV2;

  return new Promise<ProxyInfo>((resolve, reject) => {
    // Bytes received so far; the parser bounds it (needMore only below the limits), plus at most one read's worth.
    let pending: Buffer = Buffer.alloc(0);
    let settled = false;

    const finish = (error: ProxyProtocolError | undefined, info?: ProxyInfo, rest?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (error) {
        reject(error);
        return;
      }
      // Removing the last 'readable' listener lets a later 'data' listener resume the stream as on a fresh socket.
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(info as ProxyInfo);
    };

    const ended = (what: string, cause?: Error) => {
      const reason: ProxyProtocolReason = pending.length === 0 ? 'closed' : 'truncated';
      const message =
        pending.length === 0
          ? `the connection ${what} before a header arrived`
          : `the connection ${what} after ${pending.length} bytes of an incomplete header`;
      finish(new ProxyProtocolError(reason, message, cause ? { cause } : undefined));
    };

    const onReadable = () => {
      for (let i = 0; i < 1024 && !settled; i++) {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) return;
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let result: ProxyParseResult;
        try {
          result = parseProxyHeader(pending, parseOptions);
        } catch (error) {
          finish(error as ProxyProtocolError);
          return;
        }
        if (!('needMore' in result)) {
          finish(undefined, result.info, pending.subarray(result.headerLength));
          return;
        }
      }
    };
    const onEnd = () => ended('ended (FIN)');
    const onClose = () => ended('closed');
    const onError = (error: Error) =>
      ended(`failed (${(error as NodeJS.ErrnoException).code ?? error.message})`, error);

    const timer = setTimeout(() => {
      finish(
        new ProxyProtocolError(
          'timeout',
          `no complete header within ${timeoutMs} ms (${pending.length} bytes received)`,
        ),
      );
    }, timeoutMs);

    if (socket.destroyed || socket.readableEnded) {
      ended('was already closed');
      return;
    }
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}

/** True when `socket`'s peer may send a PROXY header: its address is in `trusted`. */
export function isTrustedProxy(socket: net.Socket, trusted: readonly Cidr[]): boolean {
  return cidrContains(trusted, socket.remoteAddress);
}

/** Encodes a v1 line (TCP4, TCP6 or UNKNOWN). For tests and clients. */
export function encodeProxyV1(info: Pick<ProxyInfo, 'family' | 'source' | 'destination'>): Buffer {
  if (info.family === 'UNKNOWN') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  if (info.family !== 'TCP4' && info.family !== 'TCP6') {
    fail('bad_family', `v1 carries TCP4, TCP6 or UNKNOWN, not ${info.family}`);
  }
  const { source, destination } = requireAddresses(info);
  const ipFamily = info.family === 'TCP4' ? 4 : 6;
  for (const { address, port } of [source, destination]) {
    if (net.isIP(address) !== ipFamily) fail('bad_address', `"${address}" is not an IPv${ipFamily} address`);
    checkPort(port);
  }
  return Buffer.from(
    `PROXY ${info.family} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`,
    'latin1',
  );
}

/** Encodes a v2 header; LOCAL gives the 16-byte health-check form. TLVs are appended in order. */
export function encodeProxyV2(info: Omit<ProxyInfo, 'version'>): Buffer {
  const tlvBytes = Buffer.concat(
    (info.tlvs ?? []).map(({ type, value }) => {
      if (!Number.isInteger(type) || type < 0 || type > 0xff) fail('bad_length', `TLV type ${type} is not a byte`);
      const head = Buffer.alloc(3);
      head[0] = type;
      head.writeUInt16BE(value.length, 1);
      return Buffer.concat([head, value]);
    }),
  );
  let familyByte = 0x00;
  let addresses: Buffer = Buffer.alloc(0);
  if (info.command === 'PROXY' && info.family !== 'UNKNOWN') {
    const { source, destination } = requireAddresses(info);
    switch (info.family) {
      case 'TCP4':
      case 'UDP4':
      case 'TCP6':
      case 'UDP6': {
        const size = info.family.endsWith('4') ? 4 : 16;
        familyByte = (size === 4 ? 0x10 : 0x20) | (info.family.startsWith('TCP') ? 0x01 : 0x02);
        addresses = Buffer.alloc(size * 2 + 4);
        [source, destination].forEach(({ address, port }, i) => {
          const bytes = ipToBytes(address);
          if (!bytes || bytes.length !== size)
            fail('bad_address', `"${address}" is not an IPv${size === 4 ? 4 : 6} address`);
          bytes.copy(addresses, i * size);
          addresses.writeUInt16BE(checkPort(port), size * 2 + i * 2);
        });
        break;
      }
      case 'UNIX': {
        familyByte = 0x31;
        addresses = Buffer.alloc(216);
        [source, destination].forEach(({ address }, i) => {
          const path = address.startsWith('@')
            ? Buffer.concat([Buffer.alloc(1), Buffer.from(address.slice(1))])
            : Buffer.from(address);
          if (path.length > 107) fail('bad_address', `unix path "${address}" is longer than 107 bytes`);
          path.copy(addresses, i * 108);
        });
        break;
      }
    }
  }
  const length = addresses.length + tlvBytes.length;
  if (length > 0xffff) fail('too_long', `a v2 header carries at most 65535 bytes after the fixed part, not ${length}`);
  const fixed = Buffer.alloc(PROXY_V2_FIXED_BYTES);
  V2_SIGNATURE.copy(fixed);
  fixed[12] = 0x20 | (info.command === 'LOCAL' ? 0x00 : 0x01);
  fixed[13] = familyByte;
  fixed.writeUInt16BE(length, 14);
  return Buffer.concat([fixed, addresses, tlvBytes]);
}

function requireAddresses(info: Pick<ProxyInfo, 'family' | 'source' | 'destination'>): {
  source: ProxyAddress;
  destination: ProxyAddress;
} {
  if (!info.source || !info.destination) fail('bad_address', `${info.family} needs a source and a destination`);
  return { source: info.source, destination: info.destination };
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('bad_address', `port ${port} is not in 0..65535`);
  return port;
}
