/**
 * What the `--workers` primary and its workers share, across a real node:cluster fork: the BUILT runtime (dist/)
 * runs the worker fixture; build it first with `pnpm exec tsc -b`.
 */
import cluster from 'node:cluster';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isMessage, readWorker, workerEndpoints, workerEnv } from '../src/runtime/cluster-protocol.js';

const fixture = fileURLToPath(new URL('./fixtures/cluster-worker.mjs', import.meta.url));

/** Forks the fixture with `env` added and resolves with what it reports; the worker is killed on a timeout. */
async function forkAndRead(env: Record<string, string>): Promise<unknown> {
  cluster.setupPrimary({ exec: fixture, args: [], silent: true });
  const worker = cluster.fork(env);
  const timer = setTimeout(() => worker.process.kill('SIGKILL'), 10_000);
  try {
    const [report] = (await once(worker, 'message')) as [unknown];
    await once(worker, 'exit');
    return report;
  } finally {
    clearTimeout(timer);
    if (worker.process.exitCode === null) worker.process.kill('SIGKILL');
  }
}

describe('cluster protocol', () => {
  it('gives a forked worker its id, count, SO_REUSEPORT choice and the primary’s concrete endpoints', async () => {
    const env = workerEnv(2, {
      count: 3,
      reusePort: true,
      endpoints: [
        { kind: 'ip', family: 4, address: '127.0.0.1', port: 7007 },
        { kind: 'ip', family: 6, address: '::1', port: 7008 },
      ],
    });
    expect(await forkAndRead(env)).toEqual({
      worker: { id: 2, count: 3, reusePort: true },
      endpoints: [
        { kind: 'ip', family: 4, address: '127.0.0.1', port: 7007 },
        { kind: 'ip', family: 6, address: '::1', port: 7008 },
      ],
    });
  });

  it('leaves the endpoints to the worker’s own command line when the primary shares its sockets', async () => {
    expect(await forkAndRead(workerEnv(1, { count: 2, reusePort: false }))).toEqual({
      worker: { id: 1, count: 2, reusePort: false },
      endpoints: null,
    });
  });

  it('reads nothing in a process that is not a cluster worker, whatever its environment says', () => {
    const env = workerEnv(1, { count: 2, reusePort: true, endpoints: [{ kind: 'any', port: 7 }] });
    expect(readWorker(env)).toBeUndefined();
    expect(workerEndpoints(env)).toBeUndefined();
  });

  it('tells its own messages by type and ignores anything else on the channel', () => {
    expect(isMessage({ type: 'net:ready', endpoints: ['127.0.0.1:7'] }, 'net:ready')).toBe(true);
    expect(isMessage({ type: 'net:metrics-req', id: 1 }, 'net:ready')).toBe(false);
    for (const other of [null, undefined, 'net:ready', 42, { cmd: 'NODE_CLUSTER' }]) {
      expect(isMessage(other, 'net:ready')).toBe(false);
    }
  });
});
