import { defineProject } from 'vitest/config';

const conditions = ['@net/source', 'node', 'import', 'default'];

// The whole suite runs twice: here on the fast path (ECHO_TCP_IO=fast: a Node without its internals fails loudly
// instead of passing on the fallback), and on plain net.Socket streams (vitest.stream.config.ts). Every service the
// tests start inherits the variable; a test that passes --io itself wins over it.
export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'echo-tcp',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    env: { ECHO_TCP_IO: 'fast' },
  },
});
