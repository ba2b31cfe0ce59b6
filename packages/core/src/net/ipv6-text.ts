/**
 * IPv6 text, both ways: the eight 16-bit groups of an address literal, and their RFC 5952 form. Shared by
 * endpoint parsing (canonical addresses in logs) and CIDR matching (address bytes). Internal: not re-exported.
 */

/** The eight 16-bit groups of an address already accepted by `net.isIPv6` (so no further validation here). */
export function ipv6Words(address: string): number[] {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // Embedded IPv4 (RFC 4291 §2.2 form 3): rewrite the dotted quad as two hex groups.
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => Number.parseInt(group, 16));
}

export function isV4Mapped(words: readonly number[]): boolean {
  return words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
}

export function v4FromWords(words: readonly number[]): string {
  const hi = words[6] ?? 0;
  const lo = words[7] ?? 0;
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** RFC 5952 §4: lowercase, no leading zeros, "::" for the first longest run of at least two zero groups. */
export function formatIpv6(words: readonly number[]): string {
  // §5: IPv4-mapped addresses keep the dotted quad, the form operators recognise in logs.
  if (isV4Mapped(words)) return `::ffff:${v4FromWords(words)}`;
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed (§4.2.2)
  for (let i = 0; i < words.length; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < words.length && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
