/**
 * The settings the kernel holds are the settings asked for: the probe server is run in-process on loopback and the
 * accepted sockets' options are read back independently with getsockopt.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import {
  ConnectionTracker,
  createLogger,
  getKeepAlive,
  getUserTimeout,
  Metrics,
  parseEndpoint,
  SocketOptionError,
} from '@net/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type ProbeServer, startProbeServer } from '../src/probe-server.js';
import { applyProbeSettings, describeInteraction, detectionWindow, type ProbeSettings } from '../src/settings.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Starts the server in-process and connects one client; returns the server side of the connection. */
async function acceptOne(
  settings: ProbeSettings,
): Promise<{ accepted: net.Socket; probe: ProbeServer; logs: object[] }> {
  const logs: object[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(JSON.parse(String(chunk)) as object);
      callback();
    },
  });
  const log = createLogger({
    service: 'keepalive-probe',
    instance: 'test',
    level: 'debug',
    format: 'json',
    destination,
  });
  const metrics = new Metrics({ service: 'keepalive-probe', instance: 'test', version: '0', processMetrics: false });
  const connections = new ConnectionTracker(metrics);
  const probe = await startProbeServer({
    endpoints: [parseEndpoint('127.0.0.1:0')],
    settings,
    mode: 'discard',
    maxConnections: 10,
    log,
    metrics,
    connections,
  });
  cleanups.push(() => {
    probe.stopAccepting();
    connections.destroyAll();
  });
  const port = Number(/:(\d+)$/.exec(probe.endpoints[0] ?? '')?.[1]);
  const client = net.connect(port, '127.0.0.1');
  cleanups.push(() => client.destroy());
  await new Promise((resolve) => client.once('connect', resolve));
  // The server logs the read-back once it has applied the settings; wait for that line, then find the socket.
  for (let i = 0; i < 100 && !logs.some((l) => (l as { msg: string }).msg === 'connection: keepalive read back'); i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  let accepted: net.Socket | undefined;
  connections.forEach((s) => {
    accepted = s;
  });
  if (!accepted) throw new Error('no connection accepted');
  return { accepted, probe, logs };
}

describe('settings read back', () => {
  const combinations: ProbeSettings[] = [
    { idle: 1, interval: 1, count: 10 },
    { idle: 7, interval: 3, count: 5 },
    { idle: 600, interval: 60, count: 1, userTimeout: 0 },
    { idle: 2, interval: 1, count: 3, userTimeout: 5000 },
    { idle: 32767, interval: 32767, count: 127, userTimeout: 2 ** 31 - 1 },
  ];
  for (const settings of combinations) {
    it(`gives accepted connections exactly ${JSON.stringify(settings)}`, async () => {
      const { accepted, probe, logs } = await acceptOne(settings);
      const { userTimeout, ...keepalive } = settings;
      expect(getKeepAlive(accepted)).toEqual({ enabled: true, ...keepalive });
      expect(getUserTimeout(accepted)).toBe(userTimeout ?? 0);
      expect(probe.applied).toEqual({ keepalive, userTimeoutMs: userTimeout ?? 0 });
      expect(logs).toContainEqual(
        expect.objectContaining({
          level: 20,
          msg: 'connection: keepalive read back',
          keepalive,
          userTimeoutMs: userTimeout ?? 0,
        }),
      );
    });
  }

  it('refuses values outside the kernel ranges before setting anything', () => {
    const socket = net.createServer();
    for (const bad of [
      { idle: 0, interval: 1, count: 1 },
      { idle: 1, interval: -1, count: 1 },
      { idle: 32768, interval: 1, count: 1 },
      { idle: 1, interval: 1, count: 128 },
      { idle: 1.5, interval: 1, count: 1 },
    ]) {
      expect(() => applyProbeSettings(socket, bad)).toThrow(SocketOptionError);
    }
  });
});

describe('timing model', () => {
  it('expects an idle dead peer between count x interval and max(idle, interval) + count x interval', () => {
    expect(detectionWindow({ keepalive: { idle: 1, interval: 1, count: 3 }, userTimeoutMs: 0 })).toEqual({
      earliest: 3,
      latest: 4,
    });
    expect(detectionWindow({ keepalive: { idle: 60, interval: 5, count: 4 }, userTimeoutMs: 0 })).toEqual({
      earliest: 20,
      latest: 80,
    });
  });

  it('lets TCP_USER_TIMEOUT decide instead of the count when it is set', () => {
    expect(detectionWindow({ keepalive: { idle: 1, interval: 1, count: 10 }, userTimeoutMs: 3000 })).toEqual({
      earliest: 2,
      latest: 4,
    });
  });

  it('explains how TCP_USER_TIMEOUT and keepalive combine', () => {
    const keepalive = { idle: 1, interval: 1, count: 3 };
    expect(describeInteraction({ keepalive, userTimeoutMs: 0 })).toMatch(/--user-timeout 4000/);
    expect(describeInteraction({ keepalive, userTimeoutMs: 2000 })).toMatch(/shorter .* overrides --count/);
    expect(describeInteraction({ keepalive, userTimeoutMs: 10_000 })).toMatch(/longer .* probes go on past 3/);
    expect(describeInteraction({ keepalive, userTimeoutMs: 4000 })).toMatch(/equals/);
  });
});
