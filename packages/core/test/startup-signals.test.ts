import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { StartupSignals } from '../src/runtime/startup-signals.js';

function setup() {
  const target = new EventEmitter();
  const exit = vi.fn<(code: number) => void>();
  const signals = new StartupSignals({ target: target as unknown as NodeJS.Process, exit });
  return { target, exit, signals };
}

describe('StartupSignals', () => {
  it('exits 0 at once on a signal that arrives before anything listens', () => {
    const { target, exit, signals } = setup();
    target.emit('SIGTERM', 'SIGTERM');
    expect(exit).toHaveBeenCalledExactlyOnceWith(0);
    expect(signals.received).toBeUndefined();
  });

  it('records a signal that arrives while the listeners open, for the drain to run once they are up', () => {
    const { target, exit, signals } = setup();
    signals.starting();
    target.emit('SIGINT', 'SIGINT');
    expect(exit).not.toHaveBeenCalled();
    expect(signals.received).toBe('SIGINT');
  });

  it('exits 130 on a second signal while starting, keeping the first as the one received', () => {
    const { target, exit, signals } = setup();
    signals.starting();
    target.emit('SIGTERM', 'SIGTERM');
    target.emit('SIGTERM', 'SIGTERM');
    expect(exit).toHaveBeenCalledExactlyOnceWith(130);
    expect(signals.received).toBe('SIGTERM');
  });

  it('removes its handlers on dispose, leaving the signals to the running process', () => {
    const { target, exit, signals } = setup();
    expect(target.listenerCount('SIGTERM')).toBe(1);
    expect(target.listenerCount('SIGINT')).toBe(1);
    signals.dispose();
    expect(target.listenerCount('SIGTERM')).toBe(0);
    expect(target.listenerCount('SIGINT')).toBe(0);
    target.emit('SIGTERM', 'SIGTERM');
    expect(exit).not.toHaveBeenCalled();
  });
});
