/**
 * Test helpers: spawn the built bin and wait for its readiness line, talk to it over loopback. Kept here until
 * @net/testkit offers the same for protocol tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface Running {
  proc: ChildProcess;
  /** The TCP port of the first endpoint. */
  port: number;
  endpoints: string[];
  admin: string | undefined;
  /** Every log line seen so far (parsed JSON). */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();

/** Spawns `daytime-tcp serve --port 0 ...args` and resolves once it logged `ready:`. */
export async function startServer(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-format', 'json', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(proc);
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    let buffered = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl = buffered.indexOf('\n');
      while (nl !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (typeof entry.msg === 'string' && entry.msg.startsWith('ready:')) resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
  const entry = await ready;
  const endpoints = entry.endpoints as string[];
  const port = Number(/:(\d+)$/.exec(endpoints[0] ?? '')?.[1]);
  return {
    proc,
    port,
    endpoints,
    admin: entry.admin as string | undefined,
    logs,
    stop: () => stopProcess(proc),
  };
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  started.delete(proc);
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Kills every server still running (afterEach/afterAll safety net). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((p) => stopProcess(p)));
}

/** Connects, reads to EOF, returns the bytes (as latin1 text). */
export function fetchLine(port: number, host = '127.0.0.1', send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    const chunks: Buffer[] = [];
    socket.on('connect', () => {
      if (send !== undefined) socket.write(send);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('fetchLine timed out')));
  });
}

/** Scrapes a metric's value from /metrics: the first sample of `name` whose labels contain `labels`. */
export async function metric(admin: string, name: string, labels = ''): Promise<number | undefined> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name && (m[2] ?? '').includes(labels)) return Number(m[3]);
  }
  return undefined;
}
