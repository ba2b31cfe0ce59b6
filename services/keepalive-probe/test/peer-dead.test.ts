import { Writable } from 'node:stream';
import { createLogger, Metrics } from '@net/core';
import { describe, expect, it } from 'vitest';
import { PEER_DEAD_LOG_BURST, PeerDeadReporter } from '../src/peer-dead.js';

function reporter() {
  const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(JSON.parse(String(chunk)));
      callback();
    },
  });
  const log = createLogger({ service: 'keepalive-probe', instance: 't', level: 'info', format: 'json', destination });
  const metrics = new Metrics({ service: 'keepalive-probe', instance: 't', version: '0', processMetrics: false });
  const applied = { keepalive: { idle: 1, interval: 1, count: 3 }, userTimeoutMs: 0 };
  return { logs, metrics, r: new PeerDeadReporter(log, metrics, applied) };
}

const err = Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT' });

describe('peer dead events', () => {
  it('logs a structured warn line with peer, age, time since last byte and settings', async () => {
    const { logs, metrics, r } = reporter();
    r.report({ peer: '192.0.2.2:40000', openedAt: 1000, lastByteAt: 2000, err }, 6000);
    expect(logs).toEqual([
      expect.objectContaining({
        level: 40,
        event: 'peer_dead',
        peer: '192.0.2.2:40000',
        code: 'ETIMEDOUT',
        ageSeconds: 5,
        sinceLastByteSeconds: 4,
        keepalive: { idle: 1, interval: 1, count: 3 },
        userTimeoutMs: 0,
      }),
    ]);
    expect(logs[0]?.msg).toMatch(/^peer dead: 192\.0\.2\.2:40000/);
    expect(await metrics.render()).toMatch(/^net_peers_dead_total 1$/m);
  });

  it(`counts every death but logs at most ${PEER_DEAD_LOG_BURST} a second, then one summary line`, async () => {
    const { logs, metrics, r } = reporter();
    for (let i = 0; i < PEER_DEAD_LOG_BURST + 50; i++) {
      r.report({ peer: `192.0.2.2:${10000 + i}`, openedAt: 0, lastByteAt: 0, err }, 5000 + i);
    }
    r.flush();
    expect(logs.filter((l) => l.event === 'peer_dead')).toHaveLength(PEER_DEAD_LOG_BURST);
    expect(logs.at(-1)).toMatchObject({ level: 40, event: 'peer_dead_suppressed', suppressed: 50 });
    expect(await metrics.render()).toMatch(new RegExp(`^net_peers_dead_total ${PEER_DEAD_LOG_BURST + 50}$`, 'm'));
  });
});
