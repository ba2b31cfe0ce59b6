import { readdir, readFile } from 'node:fs/promises';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { connectTo, receive, startEcho } from './helpers.js';

/** Child pids of `pid`, from /proc/PID/task/TID/children (Linux 3.5+). */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`);
  const lists = await Promise.all(
    tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')),
  );
  return lists.flatMap((l) => l.trim().split(/\s+/).filter(Boolean).map(Number));
}

async function pingPong(socket: net.Socket, word: string): Promise<string> {
  const back = receive(socket, word.length, 3000);
  socket.write(word);
  return (await back).toString();
}

describe('--workers', () => {
  afterEach(stopAllServices);

  it('a worker killed with SIGKILL takes only its own connections and is replaced within a second', async () => {
    // A fixed port below the ephemeral range: with SO_REUSEPORT (Node >= 22.12) each worker binds it itself.
    const port = 20_000 + (process.pid % 5000);
    const service = await startEcho(['--workers', '2', '--port', String(port), '--log-level', 'debug'], {
      timeoutMs: 15_000,
    });
    const primary = service.proc.pid as number;
    const workers = await childrenOf(primary);
    expect(workers).toHaveLength(2);

    // 20 connections; the debug line of each tells which worker (pid) accepted it.
    const sockets = await Promise.all(Array.from({ length: 20 }, () => connectTo(port)));
    const errors = new Map<net.Socket, Error>();
    for (const s of sockets) s.on('error', (err) => errors.set(s, err));
    const owner = new Map<net.Socket, number>();
    for (const s of sockets) {
      expect(await pingPong(s, 'hello')).toBe('hello');
      const line = await service.waitForLine(
        (l) => l.msg === 'connection opened' && l.peer === `127.0.0.1:${s.localPort}`,
        5000,
      );
      owner.set(s, line.pid as number);
    }
    const counts = workers.map((w) => sockets.filter((s) => owner.get(s) === w).length);
    expect(counts[0]! + counts[1]!).toBe(20);
    // Kill the worker that holds connections (with round-robin or SO_REUSEPORT both normally do).
    const victim = (counts[0]! > 0 ? workers[0] : workers[1]) as number;
    const survivors = sockets.filter((s) => owner.get(s) !== victim);

    const killedAt = performance.now();
    process.kill(victim, 'SIGKILL');
    let replacement: number | undefined;
    for (let i = 0; i < 200 && replacement === undefined; i++) {
      replacement = (await childrenOf(primary)).find((p) => !workers.includes(p));
      if (replacement === undefined) await sleep(10);
    }
    const replacedMs = performance.now() - killedAt;
    expect(replacement).toBeDefined();
    expect(replacedMs).toBeLessThan(1000);

    // The other worker's connections carry on as if nothing happened.
    for (const s of survivors) expect(await pingPong(s, 'still here')).toBe('still here');
    for (const s of survivors) expect(errors.get(s)).toBeUndefined();
    await service.waitForLine((l) => l.msg === 'restarted worker is ready', 10_000);
    // And new connections are served (by either worker).
    for (let i = 0; i < 4; i++) {
      const s = await connectTo(port);
      expect(await pingPong(s, `new ${i}`)).toBe(`new ${i}`);
      s.destroy();
    }
    for (const s of sockets) s.destroy();
    const exit = await service.stop();
    expect(exit.code).toBe(0);
  });
});
