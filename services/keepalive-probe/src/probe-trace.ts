/**
 * Watching keepalive probes of one loopback connection as they happen, for `demo`. Two sources:
 *
 * - `tcpdump`: a capture on `lo`, as in the classic C example (`tcpdump -n -ilo port 12345`). Needs the tool and CAP_NET_RAW. On an idle connection every bare
 *   ACK (flags `[.]`, length 0) the server sends after the handshake is a keepalive probe (RFC 1122 §4.2.3.6: a
 *   segment with sequence number SND.NXT-1 and no data), and every bare ACK the client sends back is the answer.
 * - `ss`: the kernel's own view, polled (`ss -tnoiH`): the keepalive timer `timer:(keepalive,<left>,<unanswered>)`
 *   and the segment counters; on an idle connection each new segment out is a probe, each new segment in an answer.
 *   Needs only iproute2 and no privilege, but times are only as precise as the polling period.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';

/** One packet or counter change seen. */
export interface ProbeSighting {
  /** Milliseconds since the epoch (tcpdump's capture time, or when the poll saw the change). */
  at: number;
  kind: 'handshake' | 'probe' | 'answer' | 'other';
  /** The tcpdump line, or the ss fields that changed. */
  detail: string;
}

/** A running trace. */
export interface ProbeTrace {
  source: 'tcpdump' | 'ss';
  /** How the probes are seen, for the user. */
  description: string;
  stop(): void;
}

/** How often `ss` is polled. */
export const SS_POLL_MS = 100;

/**
 * Starts `tcpdump -l -n -tt -i lo tcp port PORT` and resolves once it is capturing ("listening on" on stderr).
 * @throws {Error} tcpdump is missing, not permitted to capture, or did not start within 5 s; the message says which.
 */
export function startTcpdumpTrace(port: number, onSighting: (s: ProbeSighting) => void): Promise<ProbeTrace> {
  const args = ['-l', '-n', '-tt', '-i', 'lo', `tcp port ${port}`];
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn('tcpdump', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      reject(err);
      return;
    }
    let stderr = '';
    let started = false;
    const timer = setTimeout(() => fail(new Error('tcpdump did not start capturing within 5 s')), 5000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      if (started) return;
      child.kill('SIGKILL');
      reject(err);
    };
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ENOENT' ? new Error('tcpdump is not installed') : err),
    );
    child.once('exit', (code) =>
      fail(new Error(`tcpdump exited with code ${code}: ${stderr.trim().split('\n').pop()}`)),
    );
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-4096);
      if (!started && stderr.includes('listening on')) {
        started = true;
        clearTimeout(timer);
        resolve({
          source: 'tcpdump',
          description: `a tcpdump capture on lo (tcpdump ${args.slice(0, -1).join(' ')} '${args.at(-1)}')`,
          stop: () => child.kill('SIGTERM'),
        });
      }
    });
    const classifier = new TcpdumpClassifier(port);
    let pending = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      pending += text;
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const sighting = classifier.classify(line);
        if (sighting) onSighting(sighting);
        newline = pending.indexOf('\n');
      }
    });
  });
}

const TCPDUMP_LINE = /^(\d+\.\d+) IP6? (\S+) > (\S+): Flags \[([^\]]*)\].*length (\d+)/;

/**
 * Classifies the `tcpdump -n -tt` lines of one idle connection whose server listens on `serverPort`: the three-way
 * handshake (SYN, SYN-ACK and the client's first bare ACK), then each bare ACK from the server is a probe and each
 * bare ACK from the client an answer; anything else (data, FIN, RST) is `other`.
 */
export class TcpdumpClassifier {
  readonly #serverPort: number;
  #handshakeDone = false;

  constructor(serverPort: number) {
    this.#serverPort = serverPort;
  }

  /** The sighting of one line, or undefined for a line that is not a TCP packet line. */
  classify(line: string): ProbeSighting | undefined {
    const m = TCPDUMP_LINE.exec(line.trim());
    if (!m) return undefined;
    const [, time, source, , flags, length] = m as unknown as [string, string, string, string, string, string];
    const fromServer = source.endsWith(`.${this.#serverPort}`);
    const bareAck = flags === '.' && length === '0';
    let kind: ProbeSighting['kind'];
    if (flags.includes('S')) kind = 'handshake';
    else if (!this.#handshakeDone && bareAck && !fromServer) {
      kind = 'handshake';
      this.#handshakeDone = true;
    } else if (bareAck) kind = fromServer ? 'probe' : 'answer';
    else kind = 'other';
    return { at: Math.round(Number(time) * 1000), kind, detail: line.trim().slice(time.length + 1) };
  }
}

/** Polls `ss` for the server side of connections on `port` and reports each new segment out (probe) or in. */
export function startSsTrace(port: number, onSighting: (s: ProbeSighting) => void): ProbeTrace {
  let previous: SsSample | undefined;
  let busy = false;
  const poll = () => {
    if (busy) return;
    busy = true;
    execFile('ss', ['-tnoiH', 'state', 'established', `( sport = :${port} )`], { timeout: 2000 }, (err, stdout) => {
      busy = false;
      if (err) return;
      const sample = parseSs(stdout);
      if (sample === undefined) return;
      const at = Date.now();
      if (previous !== undefined) {
        const timer = `timer:(keepalive,${sample.timer})`;
        for (let i = previous.segsOut; i < sample.segsOut; i++) {
          onSighting({ at, kind: 'probe', detail: `segs_out ${previous.segsOut} -> ${sample.segsOut}, ${timer}` });
        }
        for (let i = previous.segsIn; i < sample.segsIn; i++) {
          onSighting({ at, kind: 'answer', detail: `segs_in ${previous.segsIn} -> ${sample.segsIn}, ${timer}` });
        }
      }
      previous = sample;
    });
  };
  const interval = setInterval(poll, SS_POLL_MS);
  poll();
  return {
    source: 'ss',
    description: `the kernel's keepalive timer and segment counters, polled every ${SS_POLL_MS} ms with \`ss -tnoiH\` (times within ${SS_POLL_MS} ms)`,
    stop: () => clearInterval(interval),
  };
}

interface SsSample {
  timer: string;
  segsOut: number;
  segsIn: number;
}

/** Reads the keepalive timer and segment counters of the first socket in `ss -tnoiH` output. */
export function parseSs(output: string): SsSample | undefined {
  const timer = /timer:\(keepalive,([^)]*)\)/.exec(output);
  if (!timer) return undefined;
  const segsOut = /\bsegs_out:(\d+)/.exec(output);
  const segsIn = /\bsegs_in:(\d+)/.exec(output);
  // The kernel omits a zero counter.
  return { timer: timer[1] as string, segsOut: Number(segsOut?.[1] ?? 0), segsIn: Number(segsIn?.[1] ?? 0) };
}
