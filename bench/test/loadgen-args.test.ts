import { describe, expect, it } from 'vitest';
import { FLAGS, loadgenArgs, SWITCHES } from '../src/loadgen.mjs';
import { SCENARIOS } from '../src/scenarios.mjs';
import { TARGETS } from '../src/servers.mjs';

describe('the generator command line', () => {
  it('passes every option a scenario or a target sets (none is dropped on the way)', () => {
    const known = new Set([...Object.keys(FLAGS), ...Object.keys(SWITCHES)]);
    for (const scenario of SCENARIOS) {
      for (const key of Object.keys({ ...scenario.options, ...scenario.checkOptions })) {
        expect(known.has(key), `${scenario.id}: option ${key}`).toBe(true);
      }
    }
    for (const [id, target] of Object.entries(TARGETS)) {
      for (const key of Object.keys(target.loadgen ?? {})) expect(known.has(key), `${id}: option ${key}`).toBe(true);
    }
  });

  it('turns the churn budget, the FIN close and the PROXY header into -n, -F and -P', () => {
    const args = loadgenArgs('tcp-churn', 21000, { conns: 4, size: 64, maxNew: 3000, fin: true, proxy: true });
    expect(args.join(' ')).toBe('tcp-churn -a 127.0.0.1 -p 21000 -c 4 -s 64 -n 3000 -F -P');
    expect(loadgenArgs('tcp-churn', 21000, { fin: false, proxy: false })).toEqual([
      'tcp-churn',
      '-a',
      '127.0.0.1',
      '-p',
      '21000',
    ]);
  });
});
