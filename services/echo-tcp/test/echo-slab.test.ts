import { describe, expect, it } from 'vitest';
import { EchoSlab } from '../src/echo-slab.js';

describe('EchoSlab', () => {
  it('copies the bytes asked for, from any place of any buffer', () => {
    const slab = new EchoSlab();
    const source = Buffer.from('0123456789');
    expect(slab.copy(source, 0, 4).toString()).toBe('0123');
    expect(slab.copy(Buffer.from('wxyz'), 0, 4).toString()).toBe('wxyz');
    expect(slab.copy(source, 3, 4).toString()).toBe('3456');
    expect(slab.copy(Buffer.from('abcdef'), 3, 3).toString()).toBe('def');
    expect(slab.copy(source, 0, 0)).toHaveLength(0);
  });

  it('reuses its slice and its view of the source for echoes of one size, copying what the source holds now', () => {
    const slab = new EchoSlab();
    const source = Buffer.alloc(64);
    source.write('first');
    const first = slab.copy(source, 0, 5);
    expect(first.toString()).toBe('first');
    // The next read lands in the same buffer: the copy must be of the new bytes, in the same (reused) slice.
    source.write('again');
    const second = slab.copy(source, 0, 5);
    expect(second).toBe(first);
    expect(second.toString()).toBe('again');
    // The copy is not the source: changing the source afterwards leaves it alone.
    source.write('later');
    expect(second.toString()).toBe('again');
  });

  it('never overwrites a slice whose write libuv kept (keepLast), also across a new slab', () => {
    const slab = new EchoSlab();
    const source = Buffer.alloc(256 * 1024, 1);
    const kept = slab.copy(Buffer.from('kept!'), 0, 5);
    slab.keepLast(5);
    const next = slab.copy(Buffer.from('other'), 0, 5);
    expect(next).not.toBe(kept);
    expect(kept.toString()).toBe('kept!');
    expect(next.toString()).toBe('other');
    // Past 1 MiB the slab is replaced: the kept slices stay as they were.
    const big: Buffer[] = [];
    for (let i = 0; i < 6; i++) {
      source.fill(i + 2);
      big.push(slab.copy(source, 0, source.length));
      slab.keepLast(source.length);
    }
    expect(kept.toString()).toBe('kept!');
    big.forEach((chunk, i) => {
      expect(chunk.every((byte) => byte === i + 2)).toBe(true);
    });
  });
});
