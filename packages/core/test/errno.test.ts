import { describe, expect, it } from 'vitest';
import { errnoName, systemError } from '../src/sys/errno.js';

describe('errnoName', () => {
  it('names an errno as Node does, whether libc (positive) or libuv (negative) reported it', () => {
    expect(errnoName(104)).toBe('ECONNRESET');
    expect(errnoName(-104)).toBe('ECONNRESET');
    expect(errnoName(-4095)).toBe('EOF');
  });

  it('turns an errno libuv does not know into one word that keeps the number, fit for a metric label', () => {
    expect(errnoName(133)).toBe('E133');
    expect(errnoName(-9999)).toBe('E9999');
    expect(errnoName(0)).toBe('E0');
  });
});

describe('systemError', () => {
  it('builds the error Node builds: message, code, negative errno, syscall', () => {
    expect(systemError(-104, 'write')).toMatchObject({ code: 'ECONNRESET', errno: -104, syscall: 'write' });
    expect(systemError(32, 'write').message).toBe('write EPIPE');
    expect(systemError(32, 'write').errno).toBe(-32);
    expect(systemError(-133, 'read')).toMatchObject({ message: 'read E133', code: 'E133', errno: -133 });
  });
});
