import { describe, expect, it } from 'vitest';
import { parseSs, TcpdumpClassifier } from '../src/probe-trace.js';

describe('probe sightings', () => {
  it('tells the handshake, probes and answers apart in a tcpdump capture of an idle connection', () => {
    const c = new TcpdumpClassifier(41611);
    const lines = [
      '1764139235.100000 IP 127.0.0.1.46140 > 127.0.0.1.41611: Flags [S], seq 1, win 65495, length 0',
      '1764139235.100010 IP 127.0.0.1.41611 > 127.0.0.1.46140: Flags [S.], seq 2, ack 2, win 65483, length 0',
      '1764139235.100020 IP 127.0.0.1.46140 > 127.0.0.1.41611: Flags [.], ack 1, win 64, length 0',
      '1764139236.120000 IP 127.0.0.1.41611 > 127.0.0.1.46140: Flags [.], ack 1, win 64, length 0',
      '1764139236.120010 IP 127.0.0.1.46140 > 127.0.0.1.41611: Flags [.], ack 1, win 64, length 0',
      '1764139237.000000 IP 127.0.0.1.46140 > 127.0.0.1.41611: Flags [P.], seq 1:6, ack 1, win 64, length 5',
      'tcpdump: verbose output suppressed',
    ];
    expect(lines.map((l) => c.classify(l)?.kind)).toEqual([
      'handshake',
      'handshake',
      'handshake',
      'probe',
      'answer',
      'other',
      undefined,
    ]);
    expect(c.classify(lines[3] as string)?.at).toBe(1764139236120);
  });

  it('reads the keepalive timer and segment counters from ss -tnoi', () => {
    const out =
      '0 0 127.0.0.1:41611 127.0.0.1:46140 timer:(keepalive,804ms,0)\n\t ts sack cubic segs_out:1 segs_in:3 lastsnd:1232\n';
    expect(parseSs(out)).toEqual({ timer: '804ms,0', segsOut: 1, segsIn: 3 });
    expect(parseSs('0 0 127.0.0.1:1 127.0.0.1:2\n')).toBeUndefined();
  });
});
