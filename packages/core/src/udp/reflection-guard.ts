/**
 * The reflection guard of UDP services that answer unsolicited datagrams (udp-echo, daytime-tcp --udp): source ports
 * from which a datagram is never answered.
 *
 * CVE-1999-0103: a forged datagram from echo (7) to chargen (19) makes two servers answer each other forever, and a
 * forged source port of any service that itself answers unsolicited datagrams (DNS, NTP, SSDP, memcached...) turns
 * the pair into a loop or a reflector. RFC 862/867 say nothing about it; every hardened inetd drops such datagrams
 * (FreeBSD inetd `check_loop`, xinetd's `bad_port_check`). A legitimate client sends from an ephemeral port
 * (RFC 6335 §6: 49152-65535; Linux 32768-60999), so the guard never stands in its way.
 */
import { custom, list, type ValueType } from '../runtime/config-types.js';

/** A closed range of ports, `[low, high]`. */
export type PortRange = readonly [low: number, high: number];

/**
 * The default guarded source ports: 0 (never a valid source, RFC 768 "optional" but forged in attacks) and the
 * services that answer unsolicited datagrams, most of them listed as amplification vectors in US-CERT TA14-017A.
 */
export const DEFAULT_GUARDED_PORTS: readonly number[] = [
  0, // never a real source port
  7, // echo (RFC 862)
  13, // daytime (RFC 867)
  17, // quote of the day (RFC 865)
  19, // chargen (RFC 864)
  37, // time (RFC 868)
  53, // DNS
  69, // TFTP
  111, // portmapper
  123, // NTP
  137, // NetBIOS name service
  161, // SNMP
  177, // XDMCP
  389, // CLDAP
  427, // SLP
  520, // RIP
  623, // IPMI
  1434, // MS-SQL browser
  1900, // SSDP
  3283, // Apple Remote Desktop
  3702, // WS-Discovery
  5353, // mDNS
  5683, // CoAP
  10001, // Ubiquiti discovery
  11211, // memcached
];

/** {@link DEFAULT_GUARDED_PORTS} as single-port ranges: the default of a setting of type {@link portSetType}. */
export const DEFAULT_GUARDED_PORT_RANGES: readonly PortRange[] = DEFAULT_GUARDED_PORTS.map((p): PortRange => [p, p]);

/**
 * Parses one item of a guard-ports list: a port (`53`) or an inclusive range (`0-1023`).
 * @throws {Error} with what is accepted, when the item is not a port or a range of ports.
 */
export function parsePortRange(raw: string): PortRange {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(raw.trim());
  const low = Number(match?.[1]);
  const high = match?.[2] === undefined ? low : Number(match[2]);
  if (!match || low > 65535 || high > 65535 || low > high) {
    throw new Error('expected a port 0-65535 or a range such as 0-1023');
  }
  return [low, high];
}

/** Formats a range back as {@link parsePortRange} reads it. */
export function formatPortRange([low, high]: PortRange): string {
  return low === high ? String(low) : `${low}-${high}`;
}

/** The value type of one port or range (`53`, `0-1023`). */
export const portRangeType: ValueType<PortRange> = custom(
  'a port 0-65535 or a range such as 0-1023',
  parsePortRange,
  formatPortRange,
);

/**
 * The value type of a guard-ports setting: a comma-separated list of ports and ranges, up to 1024 items; an empty
 * value is an empty list (no port guarded but those the service adds itself).
 *
 * @example guardPorts: option({ type: portSetType, default: DEFAULT_GUARDED_PORT_RANGES, description: '...' })
 */
export const portSetType: ValueType<readonly PortRange[]> = list(portRangeType, { maxItems: 1024 });

/**
 * One byte per port (64 KiB): a lookup on the hot path is a single indexed load, whatever the list's length.
 */
export class ReflectionGuard {
  readonly #guarded = new Uint8Array(65536);
  #count = 0;

  constructor(ranges: Iterable<PortRange>) {
    for (const range of ranges) this.add(range);
  }

  /** Guards one more port or range (udp-echo adds its own listening ports: two echo servers must not loop). */
  add([low, high]: PortRange): void {
    for (let p = low; p <= high; p++) {
      if (this.#guarded[p] === 0) this.#count++;
      this.#guarded[p] = 1;
    }
  }

  /** True when a datagram from this source port must be dropped unanswered. */
  blocks(sourcePort: number): boolean {
    return this.#guarded[sourcePort] === 1;
  }

  /** How many distinct ports are guarded. */
  get size(): number {
    return this.#count;
  }
}
