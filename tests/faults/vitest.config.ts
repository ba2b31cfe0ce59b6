import { defineProject } from 'vitest/config';

const conditions = ['@net/source', 'node', 'import', 'default'];

// The cases load the machine on purpose (thousands of sockets, a 1 GiB offer, a UDP flood): one file at a time, so
// that one case's load never skews another's figures.
export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'faults',
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
