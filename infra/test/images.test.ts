/**
 * The real images, built from infra/images/*.Containerfile by infra/build-images.sh with podman (no Docker engine
 * and no registry here: the script builds the local base image from npm packages first), then run: the service
 * answers on a published port as uid 1000, its HEALTHCHECK passes inside the container, and `podman stop` ends it
 * through SIGTERM with the drain (Node is PID 1: it would ignore SIGTERM if the runtime did not handle it).
 *
 * Runs as root where podman is installed (.ci/run installs it); NET_TEST_IMAGES=0 skips it. The service images
 * are removed afterwards; the base images localhost/net-node:24{,-build} and podman's layer cache are kept, so a
 * second run builds in seconds.
 */
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTcp, freePort, hasCommand, infraDir, pollUntil, readAll, repoRoot } from './support.js';

const enabled = process.env.NET_TEST_IMAGES !== '0' && hasCommand('podman') && process.getuid?.() === 0;
const reason = enabled ? '' : ' (skipped: needs root and podman; NET_TEST_IMAGES=0 also skips)';
const env = { ...process.env, CONTAINERS_CONF: join(infraDir, 'images', 'containers.conf') };
const tag = `test-${process.pid}`;

function podman(args: string[], timeoutMs = 60_000): { status: number | null; out: string } {
  const r = spawnSync('podman', args, { env, encoding: 'utf8', timeout: timeoutMs });
  // Without systemd podman cannot start the periodic healthcheck timer and says so on every run and stop; the
  // check itself is run on demand below (`podman healthcheck run`).
  const stderr = (r.stderr ?? '')
    .split('\n')
    .filter((l) => l && !l.includes('systemd'))
    .join('\n');
  return { status: r.status, out: `${r.stdout ?? ''}${stderr}` };
}

/**
 * `podman run -d` of one service image, published on 127.0.0.1:hostPort. Port 7 as uid 1000: podman 4.3 does not
 * lower the unprivileged port start the way Docker does, so the container gets the sysctl compose and the pods set.
 */
function runContainer(name: string, image: string, hostPort: number, containerPort: string) {
  return podman([
    'run',
    '-d',
    '--name',
    name,
    '--sysctl',
    'net.ipv4.ip_unprivileged_port_start=0',
    '-p',
    `127.0.0.1:${hostPort}:${containerPort}`,
    image,
  ]);
}

/** Resolves once the container's service has logged its ready line (at most 20 s). */
function containerReady(name: string): Promise<boolean> {
  return pollUntil(
    async () => (podman(['logs', name]).out.includes('"ready: listening on') ? true : undefined),
    20_000,
    100,
  );
}

interface ImageCase {
  service: 'echo-tcp' | 'udp-echo';
  port: string;
  /** One exchange with the published port; resolves with what came back. */
  exchange(hostPort: number, payload: Buffer): Promise<Buffer>;
}

const tcpEcho = async (hostPort: number, payload: Buffer): Promise<Buffer> => {
  const socket = await connectTcp(hostPort);
  const received = readAll(socket, 10_000);
  socket.end(payload);
  return received;
};

const udpEcho = (hostPort: number, payload: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    // Bounded retries: the first datagram can race the port forwarder's start.
    let tries = 0;
    const send = () => {
      tries += 1;
      if (tries > 20) {
        socket.close();
        reject(new Error('no UDP echo after 20 tries'));
        return;
      }
      socket.send(payload, hostPort, '127.0.0.1');
    };
    const timer = setInterval(send, 250);
    socket.on('message', (msg) => {
      clearInterval(timer);
      socket.close();
      resolve(msg);
    });
    send();
  });

const cases: ImageCase[] = [
  { service: 'echo-tcp', port: '7', exchange: tcpEcho },
  { service: 'udp-echo', port: '7/udp', exchange: udpEcho },
];

describe.skipIf(!enabled)(`service images built and run with podman${reason}`, () => {
  beforeAll(() => {
    const started = performance.now();
    const r = spawnSync(
      join(infraDir, 'build-images.sh'),
      cases.map((c) => c.service),
      {
        cwd: repoRoot,
        env: { ...env, ENGINE: 'podman', IMAGE_TAG: tag },
        encoding: 'utf8',
        timeout: 280_000,
      },
    );
    const summary = `${r.stdout}\n${r.stderr}`
      .split('\n')
      .filter((l) => l.startsWith('build-images:') || l.startsWith('build-base:'));
    console.log(`infra images: built in ${((performance.now() - started) / 1000).toFixed(1)} s\n${summary.join('\n')}`);
    if (r.status !== 0)
      throw new Error(`build-images.sh failed (${r.status ?? r.signal}):\n${`${r.stdout}\n${r.stderr}`.slice(-4000)}`);
  });

  afterAll(() => {
    // Also after a failed build: whatever was tagged goes (errors for images never built are ignored).
    for (const c of cases) podman(['rmi', '-f', `localhost/net/${c.service}:${tag}`]);
  });

  for (const c of cases) {
    describe(c.service, () => {
      const image = `localhost/net/${c.service}:${tag}`;
      const name = `net-infra-${c.service}-${process.pid}`;
      let hostPort = 0;

      beforeAll(async () => {
        hostPort = await freePort();
        const run = runContainer(name, image, hostPort, c.port);
        if (run.status !== 0) throw new Error(`podman run failed: ${run.out}`);
        await containerReady(name);
      });

      afterAll(() => {
        podman(['rm', '-f', '-t', '0', name]);
      });

      it('is configured as shipped: uid 1000, exec-form node CMD, the RFC port exposed, a HEALTHCHECK with its own check', () => {
        const inspect = JSON.parse(podman(['image', 'inspect', image]).out)[0];
        const config = inspect.Config;
        expect(config.User).toBe('1000:1000');
        expect(config.Cmd).toEqual(['node', '/app/dist/main.js', 'serve']);
        expect(Object.keys(config.ExposedPorts)).toContain(c.port.includes('/') ? c.port : `${c.port}/tcp`);
        expect((inspect.Healthcheck ?? config.Healthcheck).Test.slice(0, 4)).toEqual([
          'CMD',
          'node',
          '/app/dist/main.js',
          'check',
        ]);
        console.log(`infra images: ${image} ${(inspect.Size / 1e6).toFixed(0)} MB`);
      });

      it('answers its protocol on the published port, as uid 1000', async () => {
        const payload = Buffer.from(`through the ${c.service} image ${process.pid}\n`);
        expect((await c.exchange(hostPort, payload)).equals(payload)).toBe(true);
        expect(podman(['exec', name, 'id', '-u']).out.trim()).toBe('1000');
        expect(podman(['top', name, 'user', 'args']).out).toMatch(/\bnode\s+node \/app\/dist\/main\.js serve/);
      });

      it('passes its HEALTHCHECK (the service’s own check command) inside the container', () => {
        const r = podman(['healthcheck', 'run', name]);
        expect(r.status, r.out).toBe(0);
      });

      it('stops on SIGTERM through its drain: exit code 0, well within the 10 s drain period', () => {
        const started = performance.now();
        // -t 30: if SIGTERM were ignored (Node as PID 1 without a handler), podman would SIGKILL after 30 s (137).
        const r = podman(['stop', '-t', '30', name], 60_000);
        const seconds = (performance.now() - started) / 1000;
        expect(r.status, r.out).toBe(0);
        const exit = podman(['inspect', name, '--format', '{{.State.ExitCode}}']).out.trim();
        const logs = podman(['logs', name]).out;
        console.log(`infra images: podman stop ${c.service} took ${seconds.toFixed(2)} s, exit ${exit}`);
        expect(exit).toBe('0');
        expect(logs).toContain('"signal":"SIGTERM"');
        expect(logs).toContain('"msg":"stopped"');
        expect(seconds).toBeLessThan(10);
      });
    });
  }

  it('drains on SIGTERM: echoes what is owed, sends FIN, and exits 0 only after the client has closed', async () => {
    const image = `localhost/net/echo-tcp:${tag}`;
    const name = `net-infra-drain-${process.pid}`;
    const hostPort = await freePort();
    try {
      const run = runContainer(name, image, hostPort, '7');
      expect(run.status, run.out).toBe(0);
      await containerReady(name);
      const socket = await connectTcp(hostPort);
      const echoOnce = (text: string) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no echo within 5 s')), 5000);
          socket.once('data', (d: Buffer) => {
            clearTimeout(timer);
            resolve(d.toString('utf8'));
          });
          socket.write(text);
        });
      expect(await echoOnce('before\n')).toBe('before\n');
      // echo-tcp's drain (services/echo-tcp): stop accepting, echo what was read, half-close with a FIN, then wait
      // for the client's close up to the drain period.
      const fin = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no FIN within 10 s of SIGTERM')), 10_000);
        socket.once('end', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', reject);
      });
      podman(['kill', '--signal', 'TERM', name]);
      await fin;
      expect(podman(['logs', name]).out).toContain('"open":1,"msg":"draining');
      // Still running: the drain waits for this client (for up to 10 s).
      expect(podman(['inspect', name, '--format', '{{.State.Status}}']).out.trim()).toBe('running');
      socket.end();
      const exit = await pollUntil(
        async () => {
          const state = podman(['inspect', name, '--format', '{{.State.Status}} {{.State.ExitCode}}']).out.trim();
          return state.startsWith('exited') ? state : undefined;
        },
        15_000,
        100,
      );
      expect(exit).toBe('exited 0');
    } finally {
      podman(['rm', '-f', '-t', '0', name]);
    }
  });
});
