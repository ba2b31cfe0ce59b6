import { defineProject } from 'vitest/config';

const conditions = ['@net/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { name: 'test-support', include: ['test/**/*.test.ts'], testTimeout: 20_000, hookTimeout: 20_000 },
});
