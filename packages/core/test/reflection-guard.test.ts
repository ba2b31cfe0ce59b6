import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GUARDED_PORT_RANGES,
  DEFAULT_GUARDED_PORTS,
  formatPortRange,
  parsePortRange,
  portSetType,
  ReflectionGuard,
} from '../src/udp/reflection-guard.js';

describe('reflection guard', () => {
  it('guards by default every port the issue lists (echo, chargen, DNS, NTP, SNMP, SSDP, memcached...)', () => {
    const guard = new ReflectionGuard(DEFAULT_GUARDED_PORTS.map((p) => [p, p] as const));
    for (const port of [0, 7, 13, 17, 19, 37, 53, 123, 161, 389, 1900, 11211]) expect(guard.blocks(port)).toBe(true);
  });

  it('lets ephemeral source ports through', () => {
    const guard = new ReflectionGuard(DEFAULT_GUARDED_PORTS.map((p) => [p, p] as const));
    for (const port of [1024, 32768, 49152, 60999, 65535]) expect(guard.blocks(port)).toBe(false);
  });

  it('guards whole ranges and counts distinct ports once', () => {
    const guard = new ReflectionGuard([parsePortRange('0-1023'), parsePortRange('53')]);
    expect(guard.blocks(1023)).toBe(true);
    expect(guard.blocks(1024)).toBe(false);
    expect(guard.size).toBe(1024);
    guard.add([15000, 15000]);
    expect(guard.blocks(15000)).toBe(true);
  });

  it('parses a port or a range and refuses anything else with what is accepted', () => {
    expect(parsePortRange(' 7 ')).toEqual([7, 7]);
    expect(parsePortRange('1000-2000')).toEqual([1000, 2000]);
    expect(formatPortRange([1000, 2000])).toBe('1000-2000');
    expect(formatPortRange([7, 7])).toBe('7');
    for (const bad of ['', '-1', '65536', '20-10', 'echo', '1-2-3', '1.5']) {
      expect(() => parsePortRange(bad), bad).toThrow(/expected a port 0-65535 or a range/);
    }
  });
});

describe('portSetType (the guard-ports setting)', () => {
  it('reads a comma-separated list of ports and ranges, and formats it back the same way', () => {
    const set = portSetType.parse('7, 19,0-1023');
    expect(set).toEqual([
      [7, 7],
      [19, 19],
      [0, 1023],
    ]);
    expect(portSetType.format?.(set)).toBe('7,19,0-1023');
  });

  it('reads an empty value as an empty list, i.e. nothing guarded', () => {
    expect(portSetType.parse('')).toEqual([]);
    expect(new ReflectionGuard(portSetType.parse('')).size).toBe(0);
  });

  it('refuses a bad item, an empty item and more than 1024 items, saying what is accepted', () => {
    expect(() => portSetType.parse('7,echo')).toThrow(/expected a port 0-65535 or a range/);
    expect(() => portSetType.parse('7,,19')).toThrow(/found an empty item/);
    expect(() => portSetType.parse(Array.from({ length: 1025 }, (_, i) => String(i)).join(','))).toThrow(
      /at most 1024/,
    );
    expect(portSetType.accepts).toBe(
      'a comma-separated list of a port 0-65535 or a range such as 0-1023 (at most 1024)',
    );
  });

  it('has the default list as its default, formatted as the help shows it', () => {
    expect(DEFAULT_GUARDED_PORT_RANGES).toHaveLength(DEFAULT_GUARDED_PORTS.length);
    expect(portSetType.format?.(DEFAULT_GUARDED_PORT_RANGES)).toBe(
      '0,7,13,17,19,37,53,69,111,123,137,161,177,389,427,520,623,1434,1900,3283,3702,5353,5683,10001,11211',
    );
  });
});
