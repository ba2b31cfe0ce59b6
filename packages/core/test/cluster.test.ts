import { describe, expect, it } from 'vitest';
import { describeBalancing } from '../src/runtime/cluster.js';

describe('describeBalancing (--workers without SO_REUSEPORT)', () => {
  it('says TCP connections are handed round-robin by the primary', () => {
    const { balancing, warning } = describeBalancing('tcp', false, 4, 'v20.20.2');
    expect(balancing).toBe('node:cluster round-robin');
    expect(warning).toBe(
      'SO_REUSEPORT is not available on Node v20.20.2: 4 workers share the port through node:cluster, whose primary accepts and hands connections round-robin',
    );
  });

  it('says UDP workers read one shared socket, with no round-robin and no primary accepting', () => {
    const { balancing, warning } = describeBalancing('udp', false, 2, 'v20.20.2');
    expect(balancing).toBe('node:cluster shared socket');
    expect(warning).toContain('2 workers share one UDP socket through node:cluster');
    expect(warning).toContain('whichever reads first gets each datagram');
    expect(warning).not.toMatch(/round-robin|accepts/);
  });

  it('describes both halves for a service with TCP and UDP listeners', () => {
    const { balancing, warning } = describeBalancing('both', false, 2, 'v20.20.2');
    expect(balancing).toBe('node:cluster round-robin (TCP), shared socket (UDP)');
    expect(warning).toContain('the primary accepts TCP connections and hands them round-robin');
    expect(warning).toContain('one shared UDP socket');
  });

  it('warns about nothing with SO_REUSEPORT, whatever the transport', () => {
    for (const transport of ['tcp', 'udp', 'both'] as const) {
      expect(describeBalancing(transport, true, 2)).toEqual({ balancing: 'SO_REUSEPORT' });
    }
  });
});
