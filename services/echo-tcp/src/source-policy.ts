/**
 * Who may connect, and how often at once: xinetd's `only_from` / `no_access` (--allow / --deny) and `per_source`
 * (--max-per-source), per xinetd.conf(5). A connection refused here is reset at once, before any byte is sent.
 *
 * - Access: with neither list set everyone is allowed. With --allow set, a source must match it. When a source
 *   matches both lists, the longer (more specific) matching prefix decides, as xinetd decides between `only_from`
 *   and `no_access`; a tie denies. So `--allow 192.0.2.0/24 --deny 192.0.2.128/25` admits only the lower half.
 * - Per source: the connections open from one source at once. An IPv4 source is one address; an IPv6 source is its
 *   --per-source-ipv6-prefix network (a /64 by default: RFC 4291 §2.5.4 gives unicast subnets 64-bit interface ids,
 *   and one host usually holds a whole /64, so counting /128s would let it open 2^64 times the limit).
 * - An IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 client) counts as its IPv4 address.
 * - A peer without an IP address (a Unix socket) is neither checked nor counted: the socket file's permissions are
 *   the boundary there.
 */
import { type Cidr, cidrContains, formatIp, ipToBytes } from '@net/core';

/** Why a connection was refused: the `reason` label of net_connections_rejected_total. */
export type SourceRejection = 'denied' | 'per_source';

/** The settings of the policy, as echo-tcp's configuration gives them. */
export interface SourcePolicyOptions {
  allow: readonly Cidr[];
  deny: readonly Cidr[];
  /** Connections open at once from one source; 0: no limit. */
  maxPerSource: number;
  /** Prefix length an IPv6 source is counted by (1-128). */
  ipv6Prefix: number;
}

/** Access lists and per-source counts of one process (each --workers process counts its own connections). */
export class SourcePolicy {
  readonly #allow: readonly Cidr[];
  readonly #deny: readonly Cidr[];
  readonly #maxPerSource: number;
  readonly #ipv6Prefix: number;
  /** Open connections by source key; a key is removed when its count drops to 0, so the map holds live sources only. */
  readonly #open = new Map<string, number>();

  constructor(options: SourcePolicyOptions) {
    this.#allow = options.allow;
    this.#deny = options.deny;
    this.#maxPerSource = options.maxPerSource;
    this.#ipv6Prefix = options.ipv6Prefix;
  }

  /** False when nothing is configured: the accept path then skips the policy entirely. */
  get active(): boolean {
    return this.#allow.length > 0 || this.#deny.length > 0 || this.#maxPerSource > 0;
  }

  /**
   * Admits a connection from `address` (a socket's `remoteAddress`, or a PROXY header's source): returns why it is
   * refused, or else counts it and returns the key to {@link release} when it closes (undefined: nothing counted).
   */
  admit(address: string | undefined): { refused: SourceRejection } | { key: string | undefined } {
    const bytes = address === undefined ? undefined : ipToBytes(address.split('%')[0] ?? '');
    if (bytes === undefined) return NOT_COUNTED;
    if (!this.#allowed(address as string)) return DENIED;
    if (this.#maxPerSource === 0) return NOT_COUNTED;
    const key = this.keyOf(bytes);
    const open = this.#open.get(key) ?? 0;
    if (open >= this.#maxPerSource) return PER_SOURCE;
    this.#open.set(key, open + 1);
    return { key };
  }

  /** One connection counted under `key` has closed. */
  release(key: string): void {
    const open = (this.#open.get(key) ?? 0) - 1;
    if (open > 0) this.#open.set(key, open);
    else this.#open.delete(key);
  }

  /** Connections open from the source `key` (for tests and logs). */
  openFrom(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  /** The source a connection is counted under: `192.0.2.1`, or `2001:db8::/64` for IPv6. */
  keyOf(bytes: Buffer): string {
    const v4 = bytes.length === 4 ? bytes : isMappedV4(bytes) ? bytes.subarray(12) : undefined;
    if (v4 !== undefined) return formatIp(v4);
    const prefix = this.#ipv6Prefix;
    const masked = Buffer.from(bytes);
    for (let i = 0; i < 16; i++) {
      const bits = Math.max(0, Math.min(8, prefix - i * 8));
      masked[i] = (masked[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
    }
    return `${formatIp(masked)}/${prefix}`;
  }

  #allowed(address: string): boolean {
    const allowedBy = this.#allow.length === 0 ? 0 : longestMatch(this.#allow, address);
    if (allowedBy === -1) return false;
    const deniedBy = longestMatch(this.#deny, address);
    if (deniedBy === -1) return true;
    // Matched by both (or denied with no --allow list, which counts as a /0 allow): the more specific one decides.
    return allowedBy > deniedBy;
  }
}

const NOT_COUNTED = { key: undefined } as const;
const DENIED = { refused: 'denied' } as const;
const PER_SOURCE = { refused: 'per_source' } as const;

/** The longest prefix among the networks that contain `address`, or -1 when none does. */
function longestMatch(list: readonly Cidr[], address: string): number {
  let best = -1;
  for (const cidr of list) {
    if (cidr.prefix > best && cidrContains([cidr], address)) best = cidr.prefix;
  }
  return best;
}

function isMappedV4(bytes: Buffer): boolean {
  if (bytes.length !== 16 || bytes[10] !== 0xff || bytes[11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return true;
}
