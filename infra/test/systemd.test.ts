/**
 * infra/systemd: one .socket + .service pair per service. Checked three ways: systemd's own `systemd-analyze verify`
 * (when installed), the hardening every service unit must keep, and each unit's command line run for real under
 * `systemd-socket-activate` (systemd's tool that binds a socket and execs a program with it as sd_listen_fds(3)
 * describes), with a protocol exchange through the passed socket.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectTcp,
  freePort,
  hasCommand,
  isReadyLine,
  type Managed,
  parseLogLine,
  readAll,
  repoRoot,
  serviceBin,
  startProcess,
} from './support.js';

const unitDir = join(repoRoot, 'infra', 'systemd');
const services = readdirSync(join(repoRoot, 'services')).sort();

/** A unit file's settings: section -> key -> every value given (comments and blank lines dropped). */
function parseUnit(path: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq === -1) throw new Error(`${path}: cannot read "${line}"`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

function setting(unit: Map<string, Map<string, string[]>>, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** What `systemd-analyze verify` says about the files (empty when it has nothing to say), with its exit status. */
function verify(files: string[]): { status: number | null; said: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, said: `${r.stdout}${r.stderr}`.trim() };
}

describe('infra/systemd units', () => {
  it('has a .socket and a .service for every service, and nothing else', () => {
    const expected = services.flatMap((s) => [`${s}.service`, `${s}.socket`]).sort();
    expect(readdirSync(unitDir).sort()).toEqual(expected);
  });

  it.each(services)('%s.service keeps its hardening and listens on the socket its .socket unit names', (name) => {
    const service = parseUnit(join(unitDir, `${name}.service`));
    const socket = parseUnit(join(unitDir, `${name}.socket`));
    const s = (key: string) => setting(service, 'Service', key);
    expect({
      DynamicUser: s('DynamicUser'),
      CapabilityBoundingSet: s('CapabilityBoundingSet'),
      AmbientCapabilities: s('AmbientCapabilities'),
      NoNewPrivileges: s('NoNewPrivileges'),
      ProtectSystem: s('ProtectSystem'),
      ProtectHome: s('ProtectHome'),
      PrivateTmp: s('PrivateTmp'),
      RestrictAddressFamilies: s('RestrictAddressFamilies'),
      SystemCallFilter: s('SystemCallFilter'),
      KillSignal: s('KillSignal'),
    }).toEqual({
      DynamicUser: ['yes'],
      // Empty: no capability at all, the socket unit binds the privileged port.
      CapabilityBoundingSet: [''],
      AmbientCapabilities: [''],
      NoNewPrivileges: ['yes'],
      ProtectSystem: ['strict'],
      ProtectHome: ['yes'],
      PrivateTmp: ['yes'],
      RestrictAddressFamilies: ['AF_INET AF_INET6 AF_UNIX'],
      SystemCallFilter: ['@system-service'],
      KillSignal: ['SIGTERM'],
    });
    // V8's JIT needs writable+executable pages: MemoryDenyWriteExecute=yes would stop node from starting.
    expect(s('MemoryDenyWriteExecute')).toEqual([]);
    // Longer than the default drain (10 s): SIGKILL must not cut the drain short.
    expect(Number(s('TimeoutStopSec')[0])).toBeGreaterThan(10);
    expect(setting(service, 'Unit', 'Requires')).toEqual([`${name}.socket`]);
    const [fdName] = setting(socket, 'Socket', 'FileDescriptorName');
    expect(fdName).toBe(name);
    expect(setting(socket, 'Socket', 'Accept')).toEqual(['no']);
    expect(s('ExecStart')).toEqual([`/usr/bin/node /opt/net/${name}/dist/main.js serve --listen systemd:${fdName}`]);
  });

  describe.skipIf(!hasCommand('systemd-analyze'))('systemd-analyze verify [needs systemd-analyze]', () => {
    it('finds nothing to say about any unit', () => {
      const files = readdirSync(unitDir).map((f) => join(unitDir, f));
      // It checks that ExecStart's program exists: /usr/bin/node, where Debian's nodejs puts it.
      expect(verify(files)).toEqual({ status: 0, said: '' });
    });

    it('does complain about a misspelt setting and a missing ExecStart (the check can fail)', () => {
      const dir = mkdtempSync(join(tmpdir(), 'net-units-'));
      try {
        copyFileSync(join(unitDir, 'echo-tcp.socket'), join(dir, 'echo-tcp.socket'));
        const text = readFileSync(join(unitDir, 'echo-tcp.service'), 'utf8');
        writeFileSync(join(dir, 'echo-tcp.service'), text.replace('ProtectSystem=', 'ProtectSysten='));
        expect(verify([join(dir, 'echo-tcp.socket'), join(dir, 'echo-tcp.service')]).said).toContain(
          "Unknown key 'ProtectSysten'",
        );
        writeFileSync(join(dir, 'echo-tcp.service'), text.replace(/^ExecStart=.*$/m, ''));
        expect(verify([join(dir, 'echo-tcp.socket'), join(dir, 'echo-tcp.service')]).status).not.toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe.skipIf(!hasCommand('systemd-socket-activate'))(
  "each unit's command on a socket passed by systemd-socket-activate [needs systemd-socket-activate]",
  () => {
    let running: Managed | undefined;
    afterEach(async () => {
      await running?.stop('SIGKILL');
      running = undefined;
    });

    /**
     * Runs `name`'s ExecStart (with the built bin instead of /opt/net, and its Environment= lines) under
     * systemd-socket-activate on a loopback port, as the .socket unit describes it (stream or datagram, its
     * FileDescriptorName=). The tool execs the service on the first connection or datagram, as systemd does.
     */
    async function activate(name: string): Promise<{ proc: Managed; port: number; datagram: boolean }> {
      const service = parseUnit(join(unitDir, `${name}.service`));
      const socket = parseUnit(join(unitDir, `${name}.socket`));
      const datagram = setting(socket, 'Socket', 'ListenDatagram').length > 0;
      const fdName = setting(socket, 'Socket', 'FileDescriptorName')[0] ?? '';
      const [exec = ''] = setting(service, 'Service', 'ExecStart');
      const args = exec.split(' ').slice(2); // after "/usr/bin/node /opt/net/NAME/dist/main.js"
      const env = setting(service, 'Service', 'Environment').flatMap((e) => ['-E', e]);
      const port = await freePort();
      const proc = startProcess('systemd-socket-activate', [
        '-l',
        `127.0.0.1:${port}`,
        `--fdname=${fdName}`,
        ...(datagram ? ['--datagram'] : []),
        ...env,
        process.execPath,
        serviceBin(name),
        ...args,
      ]);
      running = proc;
      await proc.waitForLine((l) => l.startsWith('Listening on'));
      return { proc, port, datagram };
    }

    async function readyOn(proc: Managed, port: number): Promise<void> {
      const line = await proc.waitForLine((l) => {
        const entry = parseLogLine(l);
        return entry !== undefined && isReadyLine(entry);
      });
      expect(parseLogLine(line)?.endpoints).toEqual([`127.0.0.1:${port}`]);
    }

    it('echo-tcp echoes through the passed socket, and drains and exits 0 on SIGTERM', async () => {
      const { proc, port } = await activate('echo-tcp');
      const client = await connectTcp(port);
      const back = readAll(client);
      client.end('through systemd\n');
      expect((await back).toString()).toBe('through systemd\n');
      await readyOn(proc, port);
      // systemd-socket-activate execs the service in its own process: the signal reaches the runtime itself.
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toEqual({ code: 0, signal: null });
    });

    it('daytime-tcp answers a date through the passed socket', async () => {
      const { proc, port } = await activate('daytime-tcp');
      const client = await connectTcp(port);
      const answer = (await readAll(client)).toString();
      expect(answer).toMatch(/\d{2}:\d{2}:\d{2}/);
      await readyOn(proc, port);
    });

    it('udp-echo echoes through the passed UDP socket', async () => {
      const { proc, port } = await activate('udp-echo');
      const client = dgram.createSocket('udp4');
      try {
        const reply = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())));
        // The datagram that wakes the service is not answered today: udp-echo's batch engine leaves the socket to
        // dgram, with no listener, until its worker thread runs. So: one datagram every 200 ms, at most 50.
        let answer: string | undefined;
        for (let i = 0; i < 50 && answer === undefined; i++) {
          client.send('datagram via systemd', port, '127.0.0.1');
          answer = await Promise.race([reply, sleep(200).then(() => undefined)]);
        }
        expect(answer).toBe('datagram via systemd');
        await readyOn(proc, port);
      } finally {
        client.close();
      }
    });

    it('keepalive-probe takes the connection that woke it on the passed socket', async () => {
      const { proc, port } = await activate('keepalive-probe');
      const client = await connectTcp(port);
      await readyOn(proc, port);
      client.destroy();
    });
  },
);
