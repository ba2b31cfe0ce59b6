import { defineProject } from 'vitest/config';

// The check test compiles the C programs and drives real servers on loopback: minutes, not seconds, on a busy CI.
export default defineProject({
  test: { name: 'bench', include: ['test/**/*.test.ts'], testTimeout: 120000 },
});
