import { defineProject } from 'vitest/config';

// Each case starts all four services through npm: one file, cases one after another.
export default defineProject({
  test: {
    name: 'start',
    include: ['test/**/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 30_000,
    fileParallelism: false,
  },
});
