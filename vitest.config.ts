import { defineConfig } from 'vitest/config';

// One project per package; each package owns its vitest.config.ts (turbo runs them one by one,
// `pnpm test` runs them all in one process).
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'services/*/vitest.config.ts', 'bench/vitest.config.ts'],
  },
});
