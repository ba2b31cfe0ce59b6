import { defineProject } from 'vitest/config';

const conditions = ['@net/source', 'node', 'import', 'default'];

// The suite runs on each engine: here on raw handles (ECHO_TCP_IO=raw: a Node without the internals fails loudly
// instead of passing on a fallback), on sockets built around the handles (vitest.fast.config.ts) and on plain
// net.Socket streams (vitest.stream.config.ts). Every service the tests start inherits the variable; a test that
// passes --io itself wins over it.
export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'echo-tcp',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    env: { ECHO_TCP_IO: 'raw' },
  },
});
