import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/servers-setup.ts', 'test/global-setup.ts'],
    setupFiles: ['test/setup-zstd.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // End-to-end tests spawn the CLI and do real I/O; two workers match the 2-core machines.
    maxWorkers: 2,
  },
});
