import { defineProject } from 'vitest/config';

const conditions = ['@net/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { name: 'echo-tcp', include: ['test/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000 },
});
