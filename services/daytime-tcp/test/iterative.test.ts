import { once } from 'node:events';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { ConnectionTracker, createLogger, Metrics } from '@net/core';
import { describe, expect, it } from 'vitest';
import { IterativeDaytime } from '../src/iterative-daytime.js';

/**
 * A socket stand-in whose writes complete only when the test says so: a client whose kernel would not take the
 * answer, which real loopback sockets cannot be made to do for a 26-byte line.
 */
class FakeSocket extends Duplex {
  written = '';
  /** Completes the pending write, if any. */
  release: (() => void) | undefined;
  readonly stuck: boolean;
  constructor(stuck: boolean) {
    super();
    this.stuck = stuck;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written += chunk.toString('latin1');
    if (this.stuck) this.release = () => callback();
    else callback();
  }
}

function setup(options: { maxPending?: number; writeTimeoutMs?: number; closeTimeoutMs?: number } = {}) {
  const metrics = new Metrics({ service: 'daytime-tcp', instance: 'test', version: '0', processMetrics: false });
  const connections = new ConnectionTracker(metrics);
  const log = createLogger({ service: 'daytime-tcp', instance: 'test', level: 'silent', format: 'json' });
  const answerer = new IterativeDaytime({
    format: 'ctime',
    utc: true,
    maxPending: options.maxPending ?? 10,
    writeTimeoutMs: options.writeTimeoutMs ?? 100,
    closeTimeoutMs: options.closeTimeoutMs ?? 1000,
    now: () => new Date('2026-11-04T09:05:02Z'),
    log,
    metrics,
    connections,
  });
  const value = async (name: string, labels = '') => {
    const text = await metrics.render();
    const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(labels) && !l.startsWith('#'));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  return { answerer, connections, value };
}

const asSocket = (s: FakeSocket) => s as unknown as net.Socket;

describe('IterativeDaytime, the one-at-a-time answer loop', () => {
  it('answers connections strictly one after another, in arrival order', async () => {
    const { answerer, connections } = setup({ writeTimeoutMs: 5000 });
    const first = new FakeSocket(true);
    const second = new FakeSocket(false);
    answerer.accept(asSocket(first));
    answerer.accept(asSocket(second));
    await new Promise((r) => setImmediate(r));
    expect(first.written).toBe('Wed Nov  4 09:05:02 2026\r\n');
    // The first turn has not ended (its write is pending), so the second has not started.
    expect(second.written).toBe('');
    expect(answerer.pending).toBe(1);
    first.release?.();
    await answerer.idle();
    expect(second.written).toBe('Wed Nov  4 09:05:02 2026\r\n');
    connections.destroyAll();
  });

  it('gives up on a client whose write does not complete within the write timeout and serves the next', async () => {
    const { answerer, value } = setup({ writeTimeoutMs: 50 });
    const stuck = new FakeSocket(true);
    const next = new FakeSocket(false);
    answerer.accept(asSocket(stuck));
    answerer.accept(asSocket(next));
    await answerer.idle();
    expect(stuck.destroyed).toBe(true);
    expect(next.written).toHaveLength(26);
    expect(await value('net_limit_hits_total', 'limit="write_timeout"')).toBe(1);
    expect(await value('net_requests_total')).toBe(1);
    next.destroy();
  });

  it('destroys an answered client that does not close once --close-timeout is over, never before', async () => {
    const { answerer, value } = setup({ writeTimeoutMs: 5000, closeTimeoutMs: 100 });
    const lingering = new FakeSocket(false);
    const t0 = performance.now();
    answerer.accept(asSocket(lingering));
    await answerer.idle();
    expect(lingering.written).toHaveLength(26);
    await Promise.race([once(lingering, 'close'), new Promise((r) => setTimeout(r, 2000))]);
    // The sweep ticks every tenth of the shorter timeout: late by at most two ticks, early never.
    expect(lingering.destroyed).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
    expect(await value('net_limit_hits_total', 'limit="close_timeout"')).toBe(1);
  });

  it('closes connections past --max-pending at once and counts them', async () => {
    const { answerer, value, connections } = setup({ maxPending: 2, writeTimeoutMs: 5000 });
    const sockets = Array.from({ length: 5 }, () => new FakeSocket(true));
    for (const s of sockets) answerer.accept(asSocket(s));
    // One is being answered, two wait, two were refused.
    expect(sockets.map((s) => s.destroyed)).toEqual([false, false, false, true, true]);
    expect(await value('net_connections_rejected_total', 'reason="pending_queue_full"')).toBe(2);
    connections.destroyAll();
    await answerer.idle();
  });

  it('skips a client that went away while it waited for its turn', async () => {
    const { answerer, value } = setup({ writeTimeoutMs: 5000 });
    const first = new FakeSocket(true);
    const gone = new FakeSocket(false);
    answerer.accept(asSocket(first));
    answerer.accept(asSocket(gone));
    gone.destroy();
    first.release?.();
    await answerer.idle();
    expect(gone.written).toBe('');
    expect(await value('net_requests_total')).toBe(1);
    first.destroy();
  });
});
