/**
 * The rules of docs/service-contract.md as plain async checks. Each `check` spawns the real bin on loopback,
 * throws an AssertionError that says what broke, and kills every process it started, whether it passes or not.
 * `serviceContract()` wraps them in vitest tests; the testkit's own tests also call them against broken fixtures
 * to prove that each one can fail.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { METRICS } from '@net/core';
import { checkClients } from './client-rule.js';
import { freePort } from './free-port.js';
import { httpGet } from './http-get.js';
import type { HeldWork, Probe, ProbeEndpoint } from './probe.js';
import { sampleValue, scrapeMetrics } from './prometheus.js';
import { promtoolCheckMetrics, promtoolUnavailable } from './promtool.js';
import {
  type Exit,
  isReadyLine,
  type LogLine,
  runToExit,
  type ServiceProcess,
  type SpawnOptions,
  startService,
} from './service-process.js';

/** The service under test. */
export interface ContractTarget {
  /** Service name: the bin name and the `service` field of every log line, e.g. `echo-tcp`. */
  service: string;
  /** Absolute path of the built bin (e.g. `services/echo-tcp/dist/main.js`). */
  bin: string;
  probe: Probe;
  /** Environment variable prefix; default: the service name in upper snake case (`ECHO_TCP`). */
  envPrefix?: string;
  /** `udp` skips the checks that need connections (refused connects, open-connection counts). Default `tcp`. */
  transport?: 'tcp' | 'udp';
  /** Arguments added to every `serve` start (e.g. a required setting). */
  extraArgs?: readonly string[];
  /**
   * The service's client and check commands (`['client', 'check']`), which rule 9 runs against loopback peers and
   * the service itself, over `transport`. Every command named `client` or `check` must be listed.
   */
  clients?: readonly string[];
}

/** Numbers of the rules of docs/service-contract.md (7.5, a signal during start-up, has a test of its own). */
export type RuleId = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 7.5 | 8 | 9 | 10;

/** One rule: its number, a title for the test name, and its check. */
export interface Rule {
  id: RuleId;
  title: string;
  check(target: ContractTarget): Promise<void>;
  /** Test timeout for this rule. */
  timeoutMs: number;
  /**
   * Why the rule cannot be checked on this machine (a tool it needs is missing), or undefined: the test is then
   * skipped with that reason in its name, never passed.
   */
  unavailable?(): string | undefined;
}

/** The flags every service has (service-runtime `commonServeOptions`). */
export const COMMON_FLAGS = [
  'host',
  'port',
  'listen',
  'admin-port',
  'admin-host',
  'log-level',
  'log-format',
  'instance',
  'drain-timeout',
  'drain-delay',
] as const;

const LOOPBACK = '127.0.0.1';
const LEVEL_INFO = 30;
const LEVEL_ERROR = 50;

/** `echo-tcp` -> `ECHO_TCP`. */
export function defaultEnvPrefix(service: string): string {
  return service.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/** `admin-port` -> `ECHO_TCP_ADMIN_PORT`. */
export function envVariable(prefix: string, flag: string): string {
  return `${prefix}_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function prefixOf(t: ContractTarget): string {
  return t.envPrefix ?? defaultEnvPrefix(t.service);
}

function serveArgs(t: ContractTarget, ...more: string[]): string[] {
  return ['serve', '--host', LOOPBACK, '--port', '0', ...(t.extraArgs ?? []), ...more];
}

function endpointOf(s: ServiceProcess): ProbeEndpoint {
  return { host: LOOPBACK, port: s.port };
}

/** The processes one check started: all of them are killed when the check ends, passed or failed. */
class Scope {
  readonly #started: ServiceProcess[] = [];
  readonly #held: HeldWork[] = [];
  async start(t: ContractTarget, args: readonly string[], options: SpawnOptions = {}): Promise<ServiceProcess> {
    const s = await startService(t.bin, args, options);
    this.#started.push(s);
    return s;
  }
  hold(work: HeldWork): HeldWork {
    this.#held.push(work);
    return work;
  }
  close(): void {
    for (const w of this.#held) w.close();
    for (const s of this.#started) s.destroy();
  }
}

async function inScope(fn: (scope: Scope) => Promise<void>): Promise<void> {
  const scope = new Scope();
  try {
    await fn(scope);
  } finally {
    scope.close();
  }
}

/** The option rows of `--help`: flag name and the rest of the line. */
function helpRows(help: string): { flag: string; text: string }[] {
  const rows: { flag: string; text: string }[] = [];
  for (const line of help.split('\n')) {
    const m = /^\s+--([a-z0-9-]+)(?:,\s*-\w)?\s+(.*)$/.exec(line);
    // --help, --version and --man are the runtime's own, not settings: no variable, no default.
    if (m && m[1] !== 'help' && m[1] !== 'version' && m[1] !== 'man')
      rows.push({ flag: m[1] as string, text: m[2] as string });
  }
  return rows;
}

/** The package.json nearest above the bin. */
function packageOf(bin: string): { name?: string; version?: string; bin?: string | Record<string, string> } {
  let dir = path.dirname(bin);
  for (let i = 0; i < 8; i++) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof packageOf>;
    dir = path.dirname(dir);
  }
  throw new Error(`no package.json above ${bin}`);
}

async function holdWork(t: ContractTarget, s: ServiceProcess, scope: Scope): Promise<HeldWork> {
  const work = await t.probe(endpointOf(s), { holdOpen: true });
  assert.ok(
    work && typeof work.finish === 'function' && typeof work.close === 'function',
    'probe(endpoint, { holdOpen: true }) must resolve with { finish(), close() }',
  );
  return scope.hold(work);
}

/** Polls `/readyz` until it answers `status` (at most `timeoutMs`). */
async function waitForReadyz(s: ServiceProcess, status: number, timeoutMs: number, what: string): Promise<void> {
  assert.ok(s.adminUrl, 'the ready line must carry the admin URL (field "admin") when --admin-port is given');
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await httpGet(`${s.adminUrl}/readyz`, { timeoutMs: 1000 });
      if (res.status === status) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) break;
    await sleep(20);
  }
  assert.fail(`/readyz did not answer ${status} ${what} within ${timeoutMs} ms (last: ${last})`);
}

/** Resolves when a new TCP connect to the port is refused; fails if connects keep succeeding for `timeoutMs`. */
async function waitForRefusedConnect(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const outcome = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: LOOPBACK, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve('accepted');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    if (outcome === 'ECONNREFUSED') return;
    last = outcome;
    await sleep(20);
  }
  assert.fail(`new connections were still not refused ${timeoutMs} ms after the signal (last connect: ${last})`);
}

async function exitWithin(s: ServiceProcess, timeoutMs: number, what: string): Promise<Exit & { ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    s.exited,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.ok(exit, `the process did not exit within ${timeoutMs} ms ${what}`);
  return { ...exit, ms: Date.now() - started };
}

function describeLines(lines: readonly LogLine[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Rule 1: bin name, `serve` default, `--help` lists every flag with variable and default and ends with the exit
 * codes, `--version`, `--man` prints a manual page.
 */
export async function checkCommandLine(t: ContractTarget): Promise<void> {
  const pkg = packageOf(t.bin);
  const bins = typeof pkg.bin === 'string' ? { [pkg.name ?? '']: pkg.bin } : (pkg.bin ?? {});
  assert.ok(
    t.service in bins,
    `package.json "bin" must have an entry named "${t.service}" (has: ${Object.keys(bins).join(', ') || 'none'})`,
  );
  const prefix = prefixOf(t);
  await inScope(async (scope) => {
    const [help, serveHelp, version, man, plain] = await Promise.all([
      runToExit(t.bin, ['--help']),
      runToExit(t.bin, ['serve', '--help']),
      runToExit(t.bin, ['--version']),
      runToExit(t.bin, ['--man']),
      // No subcommand at all: `serve` is the default.
      scope.start(t, ['--host', LOOPBACK, '--port', '0', ...(t.extraArgs ?? [])]),
    ]);
    assert.equal(help.code, 0, `--help must exit 0 (exited ${help.code}; stderr: ${help.stderr})`);
    assert.equal(serveHelp.code, 0, `serve --help must exit 0 (exited ${serveHelp.code})`);
    assert.equal(
      serveHelp.stdout,
      help.stdout,
      '`serve --help` and `--help` must print the same (serve is the default)',
    );
    const rows = helpRows(help.stdout);
    const flags = new Set(rows.map((r) => r.flag));
    const missing = COMMON_FLAGS.filter((f) => !flags.has(f));
    assert.deepEqual(missing, [], `--help must list every flag; missing: ${missing.join(', ')}`);
    const incomplete = rows.filter((r) => !r.text.includes(`Env: ${prefix}_`) || !/Default: /.test(r.text));
    assert.deepEqual(
      incomplete.map((r) => `--${r.flag}`),
      [],
      `every flag in --help must name its environment variable (Env: ${prefix}_...) and its default (Default: ...)`,
    );
    assert.equal(version.code, 0, `--version must exit 0 (exited ${version.code})`);
    assert.ok(pkg.version, 'package.json must have a version');
    assert.ok(
      version.stdout.split(/\s+/).includes(pkg.version),
      `--version must print the package version ${pkg.version} (printed: ${JSON.stringify(version.stdout)})`,
    );
    assert.match(help.stdout, /^Exit codes: 0 .*\.$/m, '--help must end with the exit codes ("Exit codes: 0 ...")');
    assert.equal(man.code, 0, `--man must exit 0 (exited ${man.code}; stderr: ${man.stderr})`);
    assert.ok(
      man.stdout.startsWith(`.TH "${t.service.toUpperCase()}" 1 `) && man.stdout.includes('\n.SH EXIT STATUS\n'),
      '--man must print a section-1 manual page (.TH NAME 1) with an EXIT STATUS section',
    );
    assert.ok(plain.port > 0, 'without a subcommand the bin must serve (the ready line must name a port)');
  });
}

/** Rule 2: every flag has PREFIX_FLAG_NAME; a flag overrides its variable. */
export async function checkEnvironment(t: ContractTarget): Promise<void> {
  const prefix = prefixOf(t);
  const help = await runToExit(t.bin, ['--help']);
  const wrong = helpRows(help.stdout)
    .filter((r) => !r.text.includes(`Env: ${envVariable(prefix, r.flag)}.`))
    .map((r) => `--${r.flag} (expected Env: ${envVariable(prefix, r.flag)})`);
  assert.deepEqual(wrong, [], 'every flag must have the environment variable PREFIX_FLAG_NAME');
  const [fromEnv, fromFlag] = [await freePort(), await freePort()];
  const args = ['serve', '--host', LOOPBACK, ...(t.extraArgs ?? [])];
  await inScope(async (scope) => {
    const envOnly = {
      [envVariable(prefix, 'port')]: String(fromEnv),
      [envVariable(prefix, 'instance')]: 'instance-from-env',
    };
    const [a, b] = await Promise.all([
      scope.start(t, args, { env: envOnly }),
      scope.start(t, [...args, '--port', String(fromFlag), '--instance', 'instance-from-flag'], { env: envOnly }),
    ]);
    assert.equal(a.port, fromEnv, `${envVariable(prefix, 'port')}=${fromEnv} must set the port`);
    assert.equal(a.ready.instance, 'instance-from-env', `${envVariable(prefix, 'instance')} must set the instance`);
    assert.equal(b.port, fromFlag, `--port ${fromFlag} must override ${envVariable(prefix, 'port')}=${fromEnv}`);
    assert.equal(b.ready.instance, 'instance-from-flag', '--instance must override its variable');
  });
}

/** Rule 3: unknown flag or invalid value: exit 2, one message naming setting, value and what is accepted. */
export async function checkBadConfig(t: ContractTarget): Promise<void> {
  const prefix = prefixOf(t);
  const portVar = envVariable(prefix, 'port');
  const cases: { what: string; args: string[]; env?: Record<string, string>; mentions: string[] }[] = [
    { what: 'an unknown flag', args: [...serveArgs(t), '--no-such-flag-xyz'], mentions: ['--no-such-flag-xyz'] },
    { what: 'a port of 70000', args: serveArgs(t, '--port', '70000'), mentions: ['--port', '70000'] },
    {
      what: 'a negative drain timeout',
      args: serveArgs(t, '--drain-timeout', '-1'),
      mentions: ['--drain-timeout', '-1'],
    },
    {
      what: `${portVar}=70000`,
      args: ['serve', '--host', LOOPBACK, ...(t.extraArgs ?? [])],
      env: { [portVar]: '70000' },
      mentions: [portVar, '70000'],
    },
  ];
  const results = await Promise.all(cases.map((c) => runToExit(t.bin, c.args, c.env ? { env: c.env } : {})));
  cases.forEach((c, i) => {
    const r = results[i] as Awaited<ReturnType<typeof runToExit>>;
    assert.equal(
      r.code,
      2,
      `${c.what} must exit with code 2 (exited ${r.code}, signal ${r.signal}; stderr: ${r.stderr.trim()})`,
    );
    const messages = r.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(messages.length, 1, `${c.what} must print exactly one message on stderr; got:\n${r.stderr}`);
    const message = messages[0] as string;
    for (const m of c.mentions)
      assert.ok(message.includes(m), `the message for ${c.what} must name "${m}": ${message}`);
    if (c.what !== 'an unknown flag') {
      assert.match(message, /expected|accept/i, `the message for ${c.what} must say what is accepted: ${message}`);
    }
    assert.ok(!r.lines.some(isReadyLine), `${c.what} must not get as far as listening (a ready line was logged)`);
  });
}

/** Rule 4: `--port 0` listens on a free port that the ready line names. */
export async function checkPortZero(t: ContractTarget): Promise<void> {
  await inScope(async (scope) => {
    const s = await scope.start(t, serveArgs(t));
    assert.ok(
      s.endpoints.length > 0,
      `the ready line must list the endpoints (field "endpoints"): ${JSON.stringify(s.ready)}`,
    );
    assert.ok(
      s.port > 0 && s.port < 65536,
      `the ready line must name the port picked for --port 0 (got ${s.endpoints[0]})`,
    );
    await t.probe(endpointOf(s));
  });
}

/** Rule 5: JSON lines with service/instance/level, one ready line, nothing per connection at info. */
export async function checkLogs(t: ContractTarget): Promise<void> {
  await inScope(async (scope) => {
    const s = await scope.start(t, serveArgs(t, '--instance', 'contract-5', '--admin-port', '0'));
    const before = s.lines.filter((l) => l.level >= LEVEL_INFO).length;
    const probes = 5;
    for (let i = 0; i < probes; i++) await t.probe(endpointOf(s));
    if (t.transport !== 'udp' && s.adminUrl) {
      // The server may log when it sees the client's FIN: wait until it has closed every probe connection.
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        const open = sampleValue(await scrapeMetrics(`${s.adminUrl}/metrics`), 'net_connections_open');
        if (open === undefined || open === 0) break;
        await sleep(20);
      }
    } else if (s.adminUrl) {
      await httpGet(`${s.adminUrl}/healthz`);
    }
    const notJson = s.rawLines.filter((raw) => {
      try {
        const v: unknown = JSON.parse(raw);
        return typeof v !== 'object' || v === null;
      } catch {
        return true;
      }
    });
    assert.deepEqual(notJson, [], 'stdout must be JSON lines when it is not a terminal');
    const bad = s.lines.filter(
      (l) => l.service !== t.service || l.instance !== 'contract-5' || typeof l.level !== 'number',
    );
    assert.equal(
      bad.length,
      0,
      `every line must carry service "${t.service}", instance and level:\n${describeLines(bad)}`,
    );
    const ready = s.lines.filter(isReadyLine);
    assert.equal(ready.length, 1, `exactly one line must announce readiness; got ${ready.length}`);
    const info = s.lines.filter((l) => l.level >= LEVEL_INFO);
    const extra = info.slice(before);
    assert.equal(
      extra.length,
      0,
      `nothing may be logged per connection or datagram at info; ${probes} probes logged:\n${describeLines(extra)}`,
    );
  });
}

/** Labels Prometheus sets on every sample of a target: an exporter's own would arrive renamed `exported_<label>`. */
const TARGET_LABELS = ['instance', 'job'] as const;

/**
 * Rule 6: /healthz, /readyz, /metrics as valid Prometheus text with HELP and TYPE, process and shared metrics, no
 * target labels, the service's identity in net_service_info.
 */
export async function checkAdmin(t: ContractTarget): Promise<void> {
  await inScope(async (scope) => {
    const instance = 'contract-rule-6';
    const s = await scope.start(t, serveArgs(t, '--admin-port', '0', '--instance', instance));
    assert.ok(s.adminUrl, 'the ready line must carry the admin URL (field "admin") when --admin-port is given');
    await t.probe(endpointOf(s));
    const [health, ready] = await Promise.all([httpGet(`${s.adminUrl}/healthz`), httpGet(`${s.adminUrl}/readyz`)]);
    assert.equal(health.status, 200, '/healthz must answer 200 while the process runs');
    assert.equal(ready.status, 200, '/readyz must answer 200 once every listener is up');
    const scrape = await scrapeMetrics(`${s.adminUrl}/metrics`);
    assert.match(
      scrape.contentType ?? '',
      /^text\/plain/,
      '/metrics must be served as text/plain (Prometheus text format)',
    );
    const untyped = scrape.families.filter((f) => f.type === 'UNTYPED' || f.help === '').map((f) => f.name);
    assert.deepEqual(untyped, [], 'every metric family must have # HELP and # TYPE');
    const declared = new Set(Object.keys(METRICS));
    const undeclared = scrape.families.map((f) => f.name).filter((n) => n.startsWith('net_') && !declared.has(n));
    assert.deepEqual(undeclared, [], 'every net_* metric must be declared in @net/core METRICS');
    for (const name of [
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
      'net_build_info',
      'net_service_info',
      'net_ready',
    ]) {
      assert.ok(scrape.byName.has(name), `/metrics must carry ${name}`);
    }
    assert.equal(sampleValue(scrape, 'net_ready'), 1, 'net_ready must be 1 while ready');
    const identity = scrape.byName.get('net_service_info')?.metrics ?? [];
    assert.equal(identity.length, 1, 'net_service_info must have exactly one sample');
    assert.deepEqual(
      { ...identity[0]?.labels, value: identity[0]?.value },
      {
        service_name: t.service,
        service_instance_id: instance,
        service_version: packageOf(t.bin).version,
        value: '1',
      },
      'net_service_info must be 1 with service_name, service_instance_id (--instance) and service_version',
    );
    // Checked on the text: the parser drops the labels of histogram samples (it keys them by `le`).
    const targetLabel = new RegExp(`[{,](${TARGET_LABELS.join('|')})="`);
    const labelled = scrape.text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#') && targetLabel.test(l))
      .map((l) => l.slice(0, 120));
    assert.deepEqual(
      labelled,
      [],
      `no sample may carry the labels ${TARGET_LABELS.join(' or ')}: the scraper sets them on its targets`,
    );
  });
}

/**
 * Rule 7: drain on SIGTERM/SIGINT; a second signal exits 130 at once; the drain period is a setting; with a drain
 * delay, new connections are still served while /readyz says 503, and refused once the delay is over.
 */
export async function checkDrain(t: ContractTarget): Promise<void> {
  await inScope(async (scope) => {
    const finishes = async () => {
      const s = await scope.start(t, serveArgs(t, '--admin-port', '0', '--drain-timeout', '20'));
      const work = await holdWork(t, s, scope);
      s.kill('SIGTERM');
      await waitForReadyz(s, 503, 3000, 'from the moment a drain starts (SIGTERM)');
      if (t.transport !== 'udp') await waitForRefusedConnect(s.port, 3000);
      assert.equal(
        s.proc.exitCode,
        null,
        'the service must not exit while work is in flight and the drain period lasts',
      );
      await work.finish();
      const exit = await exitWithin(s, 10_000, 'after the work in flight finished');
      assert.equal(exit.code, 0, `a drained service must exit 0 (exited ${exit.code}, signal ${exit.signal})`);
    };
    const secondSignal = async () => {
      const s = await scope.start(t, serveArgs(t, '--admin-port', '0', '--drain-timeout', '20'));
      await holdWork(t, s, scope);
      s.kill('SIGINT');
      await waitForReadyz(s, 503, 3000, 'from the moment a drain starts (SIGINT)');
      s.kill('SIGINT');
      const exit = await exitWithin(s, 3000, 'after a second signal');
      assert.ok(
        exit.code !== 0 && exit.code !== null,
        `a second signal must exit non-zero (exited ${exit.code}, ${exit.signal})`,
      );
      assert.equal(exit.code, 130, 'a second signal exits with 130');
    };
    const drainPeriod = async () => {
      const s = await scope.start(t, serveArgs(t, '--admin-port', '0', '--drain-timeout', '1'));
      await holdWork(t, s, scope);
      s.kill('SIGTERM');
      // The default period is 10 s: an exit well before that proves --drain-timeout 1 was applied.
      const exit = await exitWithin(s, 7000, 'with --drain-timeout 1 and work still in flight');
      assert.equal(
        exit.code,
        0,
        `the end of the drain period must exit 0 (exited ${exit.code}, signal ${exit.signal})`,
      );
    };
    // 7.6: with --drain-delay, the listeners keep accepting while /readyz already says 503, then refuse.
    const delayed = async () => {
      const s = await scope.start(t, serveArgs(t, '--admin-port', '0', '--drain-delay', '2', '--drain-timeout', '20'));
      s.kill('SIGTERM');
      await waitForReadyz(s, 503, 3000, 'from the moment a drain starts (SIGTERM with --drain-delay 2)');
      if (t.transport === 'udp') return;
      await t
        .probe(endpointOf(s))
        .catch((err: Error) =>
          assert.fail(`during --drain-delay new connections must still be served (${err.message})`),
        );
      await waitForRefusedConnect(s.port, 5000);
      const exit = await exitWithin(s, 10_000, 'after the drain delay, with nothing in flight');
      assert.equal(exit.code, 0, `a drain after its delay must exit 0 (exited ${exit.code}, signal ${exit.signal})`);
    };
    await Promise.all([finishes(), secondSignal(), drainPeriod(), delayed()]);
  });
}

/** Where rule 7.5's preload lives: it signals the process at its first listen and holds that listen back. */
export const START_SIGNAL_HOOK = pathToFileURL(
  path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'hooks', 'signal-during-start.mjs'),
).href;

/**
 * Rule 7.5: a SIGTERM during start-up, before the ready line, ends in exit 0 and no ready line, never in death by the
 * signal; a second signal exits 130. The preload sends the signals from inside the process at its first listen, so
 * they land during start-up every time: with no admin endpoint that is the service's own listener (serve is
 * running), with `--admin-port` the admin endpoint's (for the runtime: nothing listens yet).
 */
export async function checkStartupSignal(t: ContractTarget): Promise<void> {
  const cases = [
    { what: 'a SIGTERM while the listeners open', args: serveArgs(t), signals: 'SIGTERM', code: 0 },
    {
      what: 'a SIGTERM at the first listen with --admin-port',
      args: serveArgs(t, '--admin-port', '0'),
      signals: 'SIGTERM',
      code: 0,
    },
    { what: 'a SIGTERM then a SIGINT during start-up', args: serveArgs(t), signals: 'SIGTERM,SIGINT', code: 130 },
  ];
  const results = await Promise.all(
    cases.map((c) =>
      runToExit(t.bin, c.args, {
        execArgv: ['--import', START_SIGNAL_HOOK],
        env: { NET_TESTKIT_START_SIGNALS: c.signals },
        timeoutMs: 15_000,
      }),
    ),
  );
  cases.forEach((c, i) => {
    const r = results[i] as Awaited<ReturnType<typeof runToExit>>;
    const first = (c.signals.split(',')[0] ?? '') as string;
    assert.ok(
      r.stderr.includes(`testkit: ${first} during start-up`),
      `${c.what}: the service never listened, so the signal was not sent (exited ${r.code}; stderr: ${r.stderr.trim()})`,
    );
    assert.equal(
      r.signal,
      null,
      `${c.what} must not kill the service by the signal (it died by ${r.signal}): handle SIGTERM/SIGINT from the start`,
    );
    assert.equal(r.code, c.code, `${c.what} must exit ${c.code} (exited ${r.code}; stderr: ${r.stderr.trim()})`);
    assert.ok(!r.lines.some(isReadyLine), `${c.what} must not announce readiness (a ready line was logged)`);
  });
}

/** Where rule 8's preload lives (plain JS, outside src/ so that both src and dist find it one level up). */
export const CRASH_HOOK = pathToFileURL(
  path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'hooks', 'crash-on-sigusr2.mjs'),
).href;

/** Rule 8: an uncaught error is logged once with its stack and the process exits non-zero. */
export async function checkCrash(t: ContractTarget): Promise<void> {
  await inScope(async (scope) => {
    const s = await scope.start(t, serveArgs(t), { execArgv: ['--import', CRASH_HOOK] });
    s.kill('SIGUSR2');
    const exit = await exitWithin(s, 5000, 'after an uncaught error (it must not hang half-alive)');
    assert.ok(
      exit.code !== 0 && exit.code !== null,
      `an uncaught error must exit non-zero (exited ${exit.code}, ${exit.signal})`,
    );
    assert.equal(exit.code, 70, 'an uncaught error exits with 70 (EX_SOFTWARE)');
    const logged = s.lines.filter(
      (l) => l.level >= LEVEL_ERROR && JSON.stringify(l).includes('deliberate uncaught error'),
    );
    assert.equal(
      logged.length,
      1,
      `the error must be logged exactly once; got ${logged.length}:\n${describeLines(logged)}`,
    );
    const stack = (logged[0] as LogLine).err?.stack ?? '';
    assert.match(
      stack,
      /deliberate uncaught error[\s\S]*\n\s+at /,
      'the logged error must carry its stack (field err.stack)',
    );
  });
}

/**
 * Rule 10: the live /metrics, after the probe's traffic, passes Prometheus's own `promtool check metrics` (format
 * and naming conventions: only counters end in `_total`, units in base units, HELP on every family).
 */
export async function checkPromtool(t: ContractTarget): Promise<void> {
  await inScope(async (scope) => {
    const s = await scope.start(t, serveArgs(t, '--admin-port', '0'));
    assert.ok(s.adminUrl, 'the ready line must carry the admin URL (field "admin") when --admin-port is given');
    await t.probe(endpointOf(s));
    const res = await httpGet(`${s.adminUrl}/metrics`);
    assert.equal(res.status, 200, `GET /metrics must answer 200 (answered ${res.status})`);
    const { status, output } = await promtoolCheckMetrics(res.body);
    assert.equal(status, 0, `promtool check metrics must accept /metrics (exit ${status}):\n${output.trim()}`);
  });
}

/** Every rule in order. */
export const RULES: readonly Rule[] = [
  { id: 1, title: '--help, --version, serve is the default subcommand', check: checkCommandLine, timeoutMs: 20_000 },
  {
    id: 2,
    title: 'every flag has a PREFIX_ variable and a flag overrides it',
    check: checkEnvironment,
    timeoutMs: 20_000,
  },
  {
    id: 3,
    title: 'bad config exits 2 with one message naming setting, value and what is accepted',
    check: checkBadConfig,
    timeoutMs: 20_000,
  },
  { id: 4, title: '--port 0 listens on a free port named by the ready line', check: checkPortZero, timeoutMs: 20_000 },
  {
    id: 5,
    title: 'JSON log lines with service and instance, one ready line, nothing per connection at info',
    check: checkLogs,
    timeoutMs: 20_000,
  },
  {
    id: 6,
    title: '/healthz, /readyz and /metrics as valid Prometheus text with HELP and TYPE',
    check: checkAdmin,
    timeoutMs: 20_000,
  },
  {
    id: 7,
    title: 'SIGTERM/SIGINT drain work in flight and exit 0; a second signal exits 130',
    check: checkDrain,
    timeoutMs: 30_000,
  },
  {
    id: 7.5,
    title: 'a signal during start-up exits 0 without a ready line; a second one exits 130',
    check: checkStartupSignal,
    timeoutMs: 20_000,
  },
  {
    id: 8,
    title: 'an uncaught error is logged once with its stack and exits 70',
    check: checkCrash,
    timeoutMs: 20_000,
  },
  {
    id: 9,
    title:
      'client commands: shared exit codes (69 refused, 75 timeout), --json, the table in --help, PREFIX_<COMMAND>_ variables',
    check: checkClients,
    timeoutMs: 30_000,
  },
  {
    id: 10,
    title: '/metrics passes promtool check metrics',
    check: checkPromtool,
    timeoutMs: 30_000,
    unavailable: promtoolUnavailable,
  },
];
