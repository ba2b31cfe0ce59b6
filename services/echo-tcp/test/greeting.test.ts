import { describe, expect, it } from 'vitest';
import { renderGreeting } from '../src/greeting.js';

describe('renderGreeting', () => {
  const values = { instance: 'echo-1', hostname: 'host-a' };

  it('replaces {instance} and {hostname}', () => {
    expect(renderGreeting('{instance} on {hostname}', values).toString()).toBe('echo-1 on host-a');
  });

  it('turns typed escapes \\n \\r \\t \\\\ into the characters they name', () => {
    expect(renderGreeting('a\\r\\nb\\tc\\\\n', values).toString()).toBe('a\r\nb\tc\\n');
  });

  it('keeps unknown placeholders and escapes as written', () => {
    expect(renderGreeting('{pod} \\x', values).toString()).toBe('{pod} \\x');
  });

  it('encodes as UTF-8', () => {
    expect(renderGreeting('écho', values)).toEqual(Buffer.from('écho', 'utf8'));
  });
});
