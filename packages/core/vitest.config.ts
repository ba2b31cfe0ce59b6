import { defineProject } from 'vitest/config';

// '@net/source' lets tests import workspace packages from their TypeScript sources (no build step needed).
const conditions = ['@net/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { name: 'core', include: ['test/**/*.test.ts'], testTimeout: 20_000, hookTimeout: 20_000 },
});
