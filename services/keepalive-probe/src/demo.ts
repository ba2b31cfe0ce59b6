/**
 * `keepalive-probe demo`: the classic C keepalive example in one command. A server on loopback accepts one client, enables
 * keepalive with the exact settings and prints what getsockopt reads back; a child process connects and sleeps
 * (keepalive off on its side, so every probe comes from the server); the probes are printed as they happen, from a
 * tcpdump capture on `lo` when possible, else from the kernel's keepalive timer shown by `ss`. The output says which.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { type ConfigOf, formatPeer, getKeepAlive } from '@net/core';
import type { demoOptions } from './config.js';
import { type ProbeSighting, type ProbeTrace, startSsTrace, startTcpdumpTrace } from './probe-trace.js';
import { type AppliedSettings, applyProbeSettings } from './settings.js';

/** Exit codes of `demo` (2, bad usage, comes from the runtime). */
export const DEMO_EXIT = {
  OK: 0,
  /** The client did not connect or the server could not listen. */
  FAILED: 1,
  /** The keepalive settings cannot be applied here, or `--probe-source tcpdump` cannot capture. */
  CANNOT_START: 3,
} as const;

type DemoConfig = ConfigOf<ReturnType<typeof demoOptions>>;

// The sleeping client: connects, never writes, exits when the demo closes its stdin (or the connection ends).
const CLIENT_SCRIPT = `
const s = require('node:net').connect(Number(process.argv[1]), '127.0.0.1');
s.on('error', (e) => { console.error('client: ' + e.message); process.exit(1); });
s.on('close', () => process.exit(0));
process.stdin.on('end', () => process.exit(0)).resume();
`;

/** Runs the demo; resolves with its exit code. Writes its report to `out` (stdout). */
export async function runDemo(config: DemoConfig, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const print = (line: string) => out.write(`${line}\n`);
  const settings = {
    idle: config.idle,
    interval: config.interval,
    count: config.count,
    userTimeout: config.userTimeout,
  };

  const server = net.createServer({ pauseOnConnect: false });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: config.port }, () => resolve());
    });
  } catch (err) {
    print(`demo: cannot listen on 127.0.0.1:${config.port}: ${(err as Error).message}`);
    return DEMO_EXIT.FAILED;
  }
  const port = (server.address() as net.AddressInfo).port;
  print(
    `keepalive-probe demo: a server enables keepalive on the connection it accepts, a client connects and sleeps, ` +
      `and the probes are shown for ${config.duration} s`,
  );
  print(`server  listening on 127.0.0.1:${port}`);

  const cleanups: (() => void)[] = [() => server.close()];
  const cleanup = () => {
    for (const c of cleanups.splice(0).reverse()) c();
  };
  try {
    const trace = await startTrace(config, port, print);
    if (typeof trace === 'number') return trace;
    // Times count from the SYN in the capture, or from the accept when polling ss.
    let zero: number | undefined;
    let zeroFromCapture = false;
    let probes = 0;
    let answers = 0;
    const onSighting = (s: ProbeSighting) => {
      if (s.kind === 'probe') probes++;
      if (s.kind === 'answer') answers++;
      if (s.kind === 'handshake' && !zeroFromCapture) {
        zero = s.at;
        zeroFromCapture = true;
      }
      const offset = zero === undefined ? '' : `+${((s.at - zero) / 1000).toFixed(3)} s`;
      print(`  ${offset.padEnd(9)}  ${s.kind.padEnd(9)}  ${s.detail}`);
    };
    trace.onSighting = onSighting;
    cleanups.push(() => trace.trace.stop());
    print(`probes  seen through ${trace.trace.description}`);

    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = spawn(process.execPath, ['-e', CLIENT_SCRIPT, String(port)], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    cleanups.push(() => {
      client.stdin?.end();
      client.kill('SIGTERM');
    });
    print(`client  process ${client.pid} connects to 127.0.0.1:${port} and sleeps (sends nothing, keepalive off)`);
    const clientExited = new Promise<number>((resolve) => client.once('exit', (code) => resolve(code ?? 1)));

    const socket = await Promise.race([accepted, clientExited.then(() => undefined), delay(5000)]);
    if (!(socket instanceof net.Socket)) {
      print('demo: the client did not connect');
      return DEMO_EXIT.FAILED;
    }
    zero ??= Date.now();
    socket.on('error', () => {});
    cleanups.push(() => socket.destroy());
    let applied: AppliedSettings;
    try {
      applied = applyProbeSettings(socket, settings);
    } catch (err) {
      print(`demo: cannot apply the keepalive settings: ${(err as Error).message}`);
      return DEMO_EXIT.CANNOT_START;
    }
    const state = getKeepAlive(socket);
    print(
      `server  accepted ${formatPeer(socket)}; getsockopt reads back SO_KEEPALIVE=${state.enabled ? 1 : 0} ` +
        `TCP_KEEPIDLE=${state.idle} s TCP_KEEPINTVL=${state.interval} s TCP_KEEPCNT=${state.count} ` +
        `TCP_USER_TIMEOUT=${applied.userTimeoutMs} ms${applied.userTimeoutMs === 0 ? ' (off)' : ''}`,
    );
    print(
      `        expect the first probe after ${state.idle} s of silence, then one every ${state.interval} s while answered`,
    );

    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await Promise.race([delay(config.duration * 1000), stopped, clientExited]);
    // Give the last capture lines a moment to arrive.
    await delay(50);
    print(`done    after ${config.duration} s: ${probes} probes sent by the server, ${answers} answered by the client`);
    return DEMO_EXIT.OK;
  } finally {
    cleanup();
  }
}

/** Starts the probe source chosen by `--probe-source`; returns an exit code when an explicit choice cannot run. */
async function startTrace(
  config: DemoConfig,
  port: number,
  print: (line: string) => void,
): Promise<{ trace: ProbeTrace; onSighting: (s: ProbeSighting) => void } | number> {
  // The sightings callback is set once the connection is up; until then sightings are counted but not printed.
  const holder: { trace: ProbeTrace; onSighting: (s: ProbeSighting) => void } = {
    trace: undefined as unknown as ProbeTrace,
    onSighting: () => {},
  };
  const forward = (s: ProbeSighting) => holder.onSighting(s);
  if (config.probeSource !== 'ss') {
    try {
      holder.trace = await startTcpdumpTrace(port, forward);
      return holder;
    } catch (err) {
      if (config.probeSource === 'tcpdump') {
        print(`demo: --probe-source tcpdump cannot capture: ${(err as Error).message}`);
        return DEMO_EXIT.CANNOT_START;
      }
      print(`probes  tcpdump cannot capture here (${(err as Error).message}): using ss instead`);
    }
  }
  holder.trace = startSsTrace(port, forward);
  return holder;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
