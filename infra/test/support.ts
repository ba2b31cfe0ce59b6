/**
 * What the infra proofs share: starting the real service bins and system daemons (HAProxy, nginx) as child
 * processes that are always stopped by PID, free loopback ports below the ephemeral range, and small socket
 * exchanges with deadlines.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LogLine, type ServiceProcess, startService as startServiceBin } from '@net/test-support';

export { isReadyLine, portOf, type ServiceProcess } from '@net/test-support';

export const infraDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = join(infraDir, '..');

/** Path of a service's built bin; throws with the command to run when it has not been built. */
export function serviceBin(name: string): string {
  const bin = join(repoRoot, 'services', name, 'dist', 'main.js');
  if (!existsSync(bin))
    throw new Error(`${bin} is missing: run \`pnpm build\` (or \`cd services/${name} && pnpm exec tsc -b\`) first`);
  return bin;
}

/** True when `cmd` is on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * A free TCP (and UDP) port on 127.0.0.1 below the ephemeral range (32768+), where other tests' and the system's
 * outgoing connections could take it; picked at random in 20000-31999, tried up to 50 times.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-31999 after 50 tries');
}

/** A child process whose stdout+stderr lines are kept, and which `stop()` ends by its PID. */
export interface Managed {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line matching `test`, or rejects after `timeoutMs` or when the process exits. */
  waitForLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Sends `signal` (SIGTERM by default) and waits up to 5 s for the exit, then SIGKILLs. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Managed {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<{ test: (l: string) => boolean; resolve: (l: string) => void }>();
  const onData = (() => {
    let rest = '';
    return (chunk: Buffer) => {
      rest += chunk.toString('utf8');
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        for (const w of waiters) if (w.test(line)) w.resolve(line);
      }
    };
  })();
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    exited,
    waitForLine(test, timeoutMs = 10_000) {
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          test,
          resolve: (l: string) => {
            cleanup();
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`${cmd}: no matching line within ${timeoutMs} ms; last lines:\n${lines.slice(-10).join('\n')}`),
          );
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`${cmd} exited before the line came; last lines:\n${lines.slice(-10).join('\n')}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
          child.off('exit', onExit);
        };
        waiters.add(waiter);
        child.once('exit', onExit);
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One JSON log line, or undefined for anything else. */
export function parseLogLine(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
}

/** Starts a service bin with `serve` through the shared harness and resolves once its ready line is logged. */
export function startService(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  return startServiceBin(serviceBin(name), ['serve', '--log-format', 'json', ...args], { env });
}

/** Connects to 127.0.0.1:port within `timeoutMs`. */
export function connectTcp(port: number, timeoutMs = 5000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect 127.0.0.1:${port}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Collects everything the socket sends until EOF, within `timeoutMs`. */
export function readAll(socket: Socket, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no EOF within ${timeoutMs} ms (${Buffer.concat(chunks).length} bytes so far)`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * One echo exchange with a greeting first: connect, send `payload`, half-close, read to EOF. Returns the greeting
 * line (without its newline) and the echoed bytes after it.
 */
export async function greetedEcho(
  port: number,
  payload: Buffer,
  timeoutMs = 10_000,
): Promise<{ greeting: string; echo: Buffer; localPort: number }> {
  const socket = await connectTcp(port, timeoutMs);
  const localPort = socket.localPort ?? 0;
  const received = readAll(socket, timeoutMs);
  socket.end(payload);
  const all = await received;
  socket.destroy();
  const nl = all.indexOf(0x0a);
  if (nl === -1) throw new Error(`no greeting line in ${all.length} bytes`);
  return { greeting: all.subarray(0, nl).toString('utf8'), echo: all.subarray(nl + 1), localPort };
}

/** Polls `fn` every `intervalMs` until it returns a value other than undefined, up to `timeoutMs`. */
export async function pollUntil<T>(fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** podman's settings for these hosts (runc, ulimits): see infra/images/containers.conf. */
export const podmanEnv = { ...process.env, CONTAINERS_CONF: join(infraDir, 'images', 'containers.conf') };

/** Runs podman; stdout and stderr together, without the lines about systemd (no periodic healthcheck timers here). */
export function podman(args: string[], timeoutMs = 60_000): { status: number | null; out: string } {
  const r = spawnSync('podman', args, { env: podmanEnv, encoding: 'utf8', timeout: timeoutMs });
  const stderr = (r.stderr ?? '')
    .split('\n')
    .filter((l) => l && !l.includes('systemd'))
    .join('\n');
  return { status: r.status, out: `${r.stdout ?? ''}${stderr}` };
}

/**
 * Builds service images with infra/build-images.sh (podman) as localhost/net/<service>:<tag>; throws with the end of
 * the output when the build fails. Layers are cached by podman, so a rebuild of unchanged sources takes seconds.
 */
export function buildImages(services: string[], tag: string, label: string): void {
  const started = performance.now();
  const r = spawnSync(join(infraDir, 'build-images.sh'), services, {
    cwd: repoRoot,
    env: { ...podmanEnv, ENGINE: 'podman', IMAGE_TAG: tag },
    encoding: 'utf8',
    timeout: 280_000,
  });
  const summary = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .filter((l) => l.startsWith('build-images:') || l.startsWith('build-base:'));
  console.log(`${label}: built in ${((performance.now() - started) / 1000).toFixed(1)} s\n${summary.join('\n')}`);
  if (r.status !== 0)
    throw new Error(`build-images.sh failed (${r.status ?? r.signal}):\n${`${r.stdout}\n${r.stderr}`.slice(-4000)}`);
}

/**
 * Builds the load balancer images infra/compose runs here in place of the public ones (infra/images/build-lb.sh:
 * Debian's haproxy and nginx, imported with podman); kept between runs, like the Node base. Returns their names.
 */
export function buildLoadBalancerImages(label: string): { haproxy: string; nginx: string } {
  const images = { haproxy: 'localhost/net-haproxy:2.6', nginx: 'localhost/net-nginx:1.22' };
  const started = performance.now();
  const r = spawnSync(join(infraDir, 'images', 'build-lb.sh'), [], {
    cwd: repoRoot,
    env: { ...podmanEnv, ENGINE: 'podman', HAPROXY_IMAGE: images.haproxy, NGINX_IMAGE: images.nginx },
    encoding: 'utf8',
    timeout: 280_000,
  });
  const summary = `${r.stdout}`.split('\n').filter((l) => l.startsWith('build-lb:'));
  console.log(
    `${label}: load balancer images in ${((performance.now() - started) / 1000).toFixed(1)} s\n${summary.join('\n')}`,
  );
  if (r.status !== 0)
    throw new Error(`build-lb.sh failed (${r.status ?? r.signal}):\n${`${r.stdout}\n${r.stderr}`.slice(-4000)}`);
  return images;
}

/** RFC 867 with the default `--format ctime`: one ctime(3) line ("Thu Dec  3 22:58:22 2026") and CR LF. */
export const CTIME_LINE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/;

/** What a daytime server on 127.0.0.1:`port` sends before it closes. */
export async function daytimeLine(port: number): Promise<string> {
  const socket = await connectTcp(port);
  const line = (await readAll(socket, 10_000)).toString('utf8');
  socket.destroy();
  return line;
}

/** keepalive-probe's own client from the workspace: `watch --once` connects with the keepalive settings and exits. */
export function keepaliveWatchOnce(port: number): { status: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    [
      serviceBin('keepalive-probe'),
      'watch',
      '--once',
      '--once-timeout',
      '5',
      '--admin-port',
      '0',
      '--log-format',
      'json',
      `127.0.0.1:${port}`,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
