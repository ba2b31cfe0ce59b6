/**
 * Probes are really on the wire: a tcpdump capture on loopback of an idle connection to `serve` with idle 1 s and
 * interval 1 s shows the server's probes about one second apart, each answered; and `demo` prints them.
 */
import net from 'node:net';
import { spawnLogged, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { type ProbeSighting, TcpdumpClassifier } from '../src/probe-trace.js';
import { BIN, hasCommand, isRoot, run, startServe } from './helpers.js';

const canCapture = isRoot && hasCommand('tcpdump');
const why = canCapture ? '' : ' (SKIPPED: needs tcpdump and root for a capture on lo)';

describe('probes on the wire', () => {
  afterEach(() => stopAllServices());

  it.skipIf(!canCapture)(
    `shows probes about 1 s apart on an idle loopback connection with idle=1 interval=1${why}`,
    async () => {
      const server = await startServe(['--port', '0', '--idle', '1', '--interval', '1', '--count', '10']);
      const dump = spawnLogged('tcpdump', ['-l', '-n', '-tt', '-i', 'lo', `tcp port ${server.port}`]);
      // tcpdump says "listening on lo" on stderr once it captures.
      for (let i = 0; i < 100 && !dump.stderr().includes('listening on'); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(dump.stderr()).toContain('listening on');

      const client = net.connect(server.port, '127.0.0.1');
      try {
        await new Promise((resolve) => client.once('connect', resolve));
        // The classifier is stateful (handshake first): classify the whole capture each time.
        const capture = (): ProbeSighting[] => {
          const classifier = new TcpdumpClassifier(server.port);
          return dump
            .stdout()
            .split('\n')
            .map((l) => classifier.classify(l))
            .filter((s) => s !== undefined);
        };
        // Wait (bounded: 6 s) until the capture holds three probes.
        let sightings = capture();
        for (let i = 0; i < 120 && sightings.filter((s) => s.kind === 'probe').length < 3; i++) {
          await new Promise((r) => setTimeout(r, 50));
          sightings = capture();
        }
        const handshake = sightings.find((s) => s.kind === 'handshake') as ProbeSighting;
        const probes = sightings.filter((s) => s.kind === 'probe').map((s) => s.at);
        const answers = sightings.filter((s) => s.kind === 'answer');
        const gaps = probes.slice(1).map((t, i) => (t - (probes[i] as number)) / 1000);
        console.log(
          `first probe ${((probes[0] as number) - handshake.at) / 1000} s after the handshake, then gaps ${gaps.join(', ')} s`,
        );
        expect(probes.length).toBeGreaterThanOrEqual(3);
        expect(((probes[0] as number) - handshake.at) / 1000).toBeGreaterThanOrEqual(0.95);
        expect(((probes[0] as number) - handshake.at) / 1000).toBeLessThanOrEqual(1.5);
        for (const gap of gaps) {
          expect(gap).toBeGreaterThanOrEqual(0.9);
          expect(gap).toBeLessThanOrEqual(1.5);
        }
        expect(answers.length).toBeGreaterThanOrEqual(probes.length - 1);
      } finally {
        client.destroy();
      }
    },
  );
});

describe.concurrent('demo', () => {
  it.skipIf(!canCapture)(
    `prints the settings read back and the probes from a tcpdump capture${why}`,
    async ({ expect }) => {
      const r = await run(process.execPath, [BIN, 'demo', '--duration', '2.6']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('probes  seen through a tcpdump capture on lo');
      expect(r.stdout).toContain(
        'getsockopt reads back SO_KEEPALIVE=1 TCP_KEEPIDLE=1 s TCP_KEEPINTVL=1 s TCP_KEEPCNT=10',
      );
      expect(r.stdout.match(/^ {2}\+\d\.\d{3} s +probe /gm)?.length).toBeGreaterThanOrEqual(2);
      expect(r.stdout).toMatch(/^done +after 2\.6 s: \d+ probes sent by the server, \d+ answered by the client$/m);
    },
  );

  it('prints the probes from the kernel keepalive timer with --probe-source ss', async ({ expect }) => {
    const r = await run(process.execPath, [BIN, 'demo', '--duration', '2.6', '--probe-source', 'ss', '--count', '4']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ss -tnoiH');
    expect(r.stdout).toContain('TCP_KEEPCNT=4');
    expect(
      r.stdout.match(/^ {2}\+\d\.\d{3} s +probe +segs_out \d+ -> \d+, timer:\(keepalive,/gm)?.length,
    ).toBeGreaterThanOrEqual(2);
  });
});
