/**
 * Rule 9 of docs/service-contract.md: every client and check command of a service follows one convention, so that a
 * script or a health checker can run any of them the same way. Checked against the built bin and real sockets on
 * loopback: a port nothing listens on, a peer that accepts (or binds) and never answers, and the service itself.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { CLIENT_EXIT, formatClientExitCodes } from '@net/core';
import type { ContractTarget } from './rules.js';
import { runToExit, type ServiceProcess, startService } from './service-process.js';

const LOOPBACK = '127.0.0.1';

/** The timeout rule 9 sets through `PREFIX_<COMMAND>_TIMEOUT`, in seconds: short, and unlike any default. */
const SILENT_TIMEOUT_S = 0.25;

/** Commands that are clients by name: a service must declare each in `clients`, so none escapes the rule. */
const CLIENT_NAMES = new Set(['client', 'check']);

type Run = Awaited<ReturnType<typeof runToExit>>;

/** A peer that takes connections (TCP) or datagrams (UDP) and never answers, and a port where nothing listens. */
interface Peers {
  silentPort: number;
  refusedPort: number;
  close(): Promise<void>;
}

async function tcpPeers(): Promise<Peers> {
  const held: net.Socket[] = [];
  const silent = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    held.push(socket);
  });
  await new Promise<void>((resolve) => silent.listen(0, LOOPBACK, resolve));
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, LOOPBACK, resolve));
  const refusedPort = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  return {
    silentPort: (silent.address() as net.AddressInfo).port,
    refusedPort,
    async close() {
      for (const s of held) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    },
  };
}

async function udpPeers(): Promise<Peers> {
  const bind = async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
    return socket;
  };
  // Bound and reading, never replying: the datagrams are received and dropped.
  const silent = await bind();
  silent.on('message', () => {});
  // A port that was bound a moment ago and is closed now: the kernel answers ICMP port unreachable.
  const closed = await bind();
  const refusedPort = closed.address().port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  return {
    silentPort: silent.address().port,
    refusedPort,
    async close() {
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    },
  };
}

/** `client` -> `ECHO_TCP_CLIENT`. */
function commandPrefix(t: ContractTarget, command: string): string {
  const prefix = t.envPrefix ?? t.service.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return `${prefix}_${command.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
}

/** The commands `--help` names on its `Commands:` line. */
function commandsOf(help: string): string[] {
  const line = /^Commands: (.*?) \(default: serve\)/m.exec(help)?.[1] ?? '';
  return line
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

/** The JSON object of a `--json` run; fails unless stdout is exactly one object with the fields rule 9 requires. */
function resultOf(what: string, r: Run): Record<string, unknown> {
  const text = r.stdout.trim();
  assert.ok(
    text !== '',
    `${what}: --json must print one JSON object on stdout (stdout was empty; stderr: ${r.stderr.trim()})`,
  );
  assert.ok(!text.includes('\n'), `${what}: --json must print exactly one line on stdout, got:\n${r.stdout}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    assert.fail(`${what}: --json must print valid JSON on stdout, got: ${text.slice(0, 200)}`);
  }
  assert.ok(
    typeof value === 'object' && value !== null && !Array.isArray(value),
    `${what}: --json must print an object`,
  );
  const result = value as Record<string, unknown>;
  assert.equal(result.exitCode, r.code, `${what}: the JSON's exitCode must be the process's exit code (${r.code})`);
  assert.equal(
    result.result,
    r.code === 0 ? 'ok' : 'error',
    `${what}: "result" must be "ok" or "error" as the exit code says`,
  );
  assert.ok(
    typeof result.target === 'string' || result.target === null,
    `${what}: "target" must be the endpoint (or null before one was parsed)`,
  );
  assert.equal(typeof result.elapsedMs, 'number', `${what}: "elapsedMs" must be a number`);
  if (r.code === 0) {
    assert.ok(!('error' in result), `${what}: a successful run has no "error"`);
  } else {
    const error = result.error as { code?: unknown; message?: unknown } | undefined;
    assert.ok(
      typeof error?.code === 'string' && typeof error.message === 'string',
      `${what}: a failed run carries "error": {"code", "message"} (got ${JSON.stringify(result.error)})`,
    );
  }
  return result;
}

function codeIs(what: string, r: Run, code: number, meaning: string): void {
  assert.equal(
    r.code,
    code,
    `${what} must exit ${code} (${meaning}); exited ${r.code}, signal ${r.signal}; stderr: ${r.stderr.trim()}`,
  );
}

/** Rule 9 for one client command. */
async function checkClient(t: ContractTarget, command: string, service: ServiceProcess, peers: Peers): Promise<void> {
  const scope = commandPrefix(t, command);
  const what = `${t.service} ${command}`;
  const refused = `${LOOPBACK}:${peers.refusedPort}`;
  const silent = `${LOOPBACK}:${peers.silentPort}`;
  const [help, refusedText, refusedJson, silentJson, okJson, badFlagJson] = await Promise.all([
    runToExit(t.bin, [command, '--help']),
    runToExit(t.bin, [command, refused]),
    runToExit(t.bin, [command, '--json', refused]),
    // The timeout comes from the command's own variable: proves PREFIX_<COMMAND>_TIMEOUT is read.
    runToExit(t.bin, [command, '--json', silent], { env: { [`${scope}_TIMEOUT`]: String(SILENT_TIMEOUT_S) } }),
    runToExit(t.bin, [command, '--json', `${LOOPBACK}:${service.port}`]),
    runToExit(t.bin, [command, '--json', '--timeout', 'soon', `${LOOPBACK}:${service.port}`]),
  ]);

  assert.equal(help.code, 0, `${what} --help must exit 0 (exited ${help.code})`);
  const table = formatClientExitCodes();
  assert.ok(
    help.stdout.trimEnd().endsWith(table),
    `${what} --help must end with the client exit-code table of @net/core:\n${table}\n--- its help ends with:\n${help.stdout.trimEnd().split('\n').slice(-9).join('\n')}`,
  );
  const rows = [...help.stdout.matchAll(/^\s+--([a-z0-9-]+)(?:,\s*-\w)?\s+(.*)$/gm)]
    .map((m) => ({ flag: m[1] as string, text: m[2] as string }))
    .filter((r) => r.flag !== 'help' && r.flag !== 'version' && r.flag !== 'man'); // the runtime's own flags
  const flags = rows.map((r) => r.flag);
  for (const needed of ['timeout', 'json']) {
    assert.ok(flags.includes(needed), `${what} --help must list --${needed} (lists: ${flags.join(', ')})`);
  }
  const misnamed = rows
    .map((r) => ({ flag: r.flag, expected: `${scope}_${r.flag.toUpperCase().replace(/-/g, '_')}`, text: r.text }))
    .filter((r) => !r.text.includes(`Env: ${r.expected}.`))
    .map((r) => `--${r.flag} (expected Env: ${r.expected}; ${/Env: [^ ]+/.exec(r.text)?.[0] ?? 'no Env'})`);
  assert.deepEqual(misnamed, [], `every setting of ${what} must have the variable PREFIX_<COMMAND>_<SETTING>`);

  codeIs(`${what} against ${refused}, where nothing listens`, refusedText, CLIENT_EXIT.UNAVAILABLE, 'refused');
  codeIs(`${what} --json against ${refused}`, refusedJson, CLIENT_EXIT.UNAVAILABLE, 'refused');
  assert.equal(
    resultOf(`${what} --json, refused`, refusedJson).target,
    refused,
    `${what} --json: "target" must name the endpoint it tried`,
  );

  codeIs(
    `${what} against a peer that never answers, with ${scope}_TIMEOUT=${SILENT_TIMEOUT_S}`,
    silentJson,
    CLIENT_EXIT.TIMEOUT,
    'timeout',
  );
  assert.equal(
    resultOf(`${what} --json, silent peer`, silentJson).timeoutMs,
    SILENT_TIMEOUT_S * 1000,
    `${what} --json: "timeoutMs" must be the timeout set by ${scope}_TIMEOUT=${SILENT_TIMEOUT_S}`,
  );

  codeIs(`${what} against the service itself`, okJson, CLIENT_EXIT.OK, 'ok');
  resultOf(`${what} --json against the service`, okJson);

  codeIs(`${what} --json --timeout soon`, badFlagJson, CLIENT_EXIT.USAGE, 'bad usage');
  assert.equal(
    resultOf(`${what} --json --timeout soon`, badFlagJson).exitCode,
    CLIENT_EXIT.USAGE,
    `${what}: a flag that does not parse under --json still prints the JSON object`,
  );
}

/**
 * Rule 9: every client and check command exits with the shared codes (69 refused, 75 timeout, 0 ok, 2 bad usage),
 * prints one JSON object with `--json`, ends its `--help` with the exit-code table, and names its variables
 * `PREFIX_<COMMAND>_<SETTING>`. A service without client commands passes when it has none named client or check.
 */
export async function checkClients(t: ContractTarget): Promise<void> {
  const clients = t.clients ?? [];
  const help = await runToExit(t.bin, ['--help']);
  const commands = commandsOf(help.stdout);
  assert.ok(commands.includes('serve'), `${t.service} --help must name its commands ("Commands: serve, ...")`);
  const undeclared = commands.filter((c) => CLIENT_NAMES.has(c) && !clients.includes(c));
  assert.deepEqual(
    undeclared,
    [],
    `${t.service} has client commands its contract test does not declare: pass clients: [${undeclared.map((c) => `'${c}'`).join(', ')}]`,
  );
  const missing = clients.filter((c) => !commands.includes(c));
  assert.deepEqual(missing, [], `${t.service} --help does not list the declared client commands`);
  if (clients.length === 0) return;

  const peers = t.transport === 'udp' ? await udpPeers() : await tcpPeers();
  let service: ServiceProcess | undefined;
  try {
    service = await startService(t.bin, ['serve', '--host', LOOPBACK, '--port', '0', ...(t.extraArgs ?? [])]);
    const started = service;
    await Promise.all(clients.map((c) => checkClient(t, c, started, peers)));
  } finally {
    service?.destroy();
    await peers.close();
  }
}
