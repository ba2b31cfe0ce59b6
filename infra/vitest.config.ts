import { defineProject } from 'vitest/config';

// The infra proofs start real processes (HAProxy, nginx, podman containers): slow, and one file at a time so that
// two of them never compete for the two cores of a CI machine.
export default defineProject({
  test: {
    name: 'infra',
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
